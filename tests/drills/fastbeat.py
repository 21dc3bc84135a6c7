"""The product's beat, with time compressed for the crash drills: `celery -A tests.drills.fastbeat beat`.

Every entry of portal/celery.py's schedule keeps its task, its options and the ratio of its expiry
to its period; both are multiplied by DRILL_BEAT_SCALE (0.05: a one-minute sweep every 3 s,
expiring after 2.75 s; the hourly month close every 3 minutes). The beat_init hook that starts
every sweep at once is the product's own (importing portal.celery connects it). Workers run the
unmodified `portal` app.
"""

import os

from portal.celery import app

SCALE = float(os.environ.get("DRILL_BEAT_SCALE", "1"))

for entry in app.conf.beat_schedule.values():
    entry["schedule"] = entry["schedule"] * SCALE
    entry["options"] = {**entry.get("options", {}), "expires": entry["options"]["expires"] * SCALE}

__all__ = ["app"]
