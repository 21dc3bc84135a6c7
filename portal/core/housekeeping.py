"""The daily housekeeping (beat's `housekeeping`, portal.core.tasks): what a deployment keeps growing
and nothing else removes, removed once a day, each step safe to run twice.

- Expired sessions: Django removes none by itself (what `manage.py clearsessions` does, here on
  beat rather than a cron the deployment would have to know of).
- Expired API tokens (portal.core.api_tokens.tokens_forget_expired): knox removes one only when it
  is presented again.
- The bodies of sent emails older than OUTBOX_KEEP_BODIES_DAYS (`outbox_forget_bodies`): their
  context, text and HTML are emptied; the row stays with its key (a second enqueue of the same
  email is still a no-op), its Message-ID (a reply still threads), recipient, subject and times.
- Files under MEDIA_ROOT that no row names (`media_orphans_remove`): an attachment's file is
  written as its row is inserted, inside the transaction of its ticket or reply; when that
  transaction is rolled back (the filing failed and the message was held, a database error and
  the MTA's retry, a poller's group taken again) the row goes and the file stays. A file is removed
  only when it is older than ORPHAN_AGE, so the file of a transaction still running is never taken.
"""

from __future__ import annotations

import logging
import os
import time
from datetime import datetime, timedelta
from importlib import import_module
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.db import models

from portal.core.api_tokens import tokens_forget_expired
from portal.models import OutboxMessage

log = logging.getLogger(__name__)

BATCH = 1000
# The housekeeping's steps stop starting new batches after this many seconds (the task's soft time
# limit is 600): the next day's run goes on where this one stopped.
BUDGET = 300.0
# A file no row names is removed once it is this old: no transaction lasts that long.
ORPHAN_AGE = timedelta(days=1)


def sessions_clear() -> None:
    """Remove the expired sessions of the session engine in use (as `clearsessions`)."""
    import_module(settings.SESSION_ENGINE).SessionStore.clear_expired()


def bodies_kept_days() -> int:
    return settings.OUTBOX_KEEP_BODIES_DAYS


def outbox_bodies_removed(msg: OutboxMessage) -> bool:
    """Whether the housekeeping emptied this sent row's bodies (a sent row always has its text:
    the worker stores it before it sends)."""
    return msg.status == OutboxMessage.Status.SENT and not msg.body_text


def outbox_forget_bodies(*, now: datetime, deadline: float | None = None) -> int:
    """Empty the context, text and HTML of the emails sent more than OUTBOX_KEEP_BODIES_DAYS ago,
    in batches (found by the partial index outbox_bodies_kept). Returns how many rows."""
    days = bodies_kept_days()
    if days <= 0:
        return 0
    kept = OutboxMessage.objects.filter(status=OutboxMessage.Status.SENT, sent_at__lt=now - timedelta(days=days))
    kept = kept.exclude(body_text="")
    emptied = 0
    while deadline is None or time.monotonic() < deadline:
        ids = list(kept.order_by("sent_at").values_list("pk", flat=True)[:BATCH])
        if not ids:
            break
        emptied += OutboxMessage.objects.filter(pk__in=ids).update(context="", body_text="", body_html="")
    return emptied


def _file_fields() -> list[tuple[type[models.Model], str, str]]:
    """Every FileField of every model, with the folder under MEDIA_ROOT its upload_to writes to
    (None when it cannot be told without an instance: its folder is then never swept)."""
    found = []
    for model in apps.get_models():
        for field in model._meta.get_fields():
            if isinstance(field, models.FileField) and field.concrete:
                try:
                    folder = os.path.dirname(field.generate_filename(None, "probe"))
                except Exception:  # noqa: BLE001 - an upload_to that needs its instance
                    folder = None
                found.append((model, field.attname, folder))
    return found


def media_orphans_remove(*, now: datetime, deadline: float | None = None) -> int:
    """Remove the files, in the folders the FileFields write to, that no row names and that are older
    than ORPHAN_AGE. Returns how many. The names are read once per run (one read of each table's
    file column), the folders listed once."""
    fields = _file_fields()
    folders = sorted({folder for _, _, folder in fields if folder})
    root = Path(settings.MEDIA_ROOT)
    oldest = (now - ORPHAN_AGE).timestamp()
    named: set[str] | None = None
    removed = 0
    for folder in folders:
        directory = root / folder
        if not directory.is_dir():
            continue
        with os.scandir(directory) as entries:
            for entry in entries:
                if deadline is not None and time.monotonic() >= deadline:
                    return removed
                if not entry.is_file(follow_symlinks=False) or entry.stat().st_mtime >= oldest:
                    continue
                if named is None:  # read only when a folder holds an old file
                    named = {
                        name
                        for model, attname, _ in fields
                        for name in model._default_manager.exclude(**{attname: ""})
                        .values_list(attname, flat=True)
                        .iterator(chunk_size=5000)
                    }
                name = f"{folder}/{entry.name}"
                if name in named:
                    continue
                try:
                    os.remove(entry.path)
                except FileNotFoundError:
                    continue
                log.info("housekeeping: removed %s, a file no row names", name)
                removed += 1
    return removed


def housekeeping(*, now: datetime) -> str:
    """The day's housekeeping; what it removed, in words (the sweep's heartbeat result)."""
    deadline = time.monotonic() + BUDGET
    sessions_clear()
    tokens = tokens_forget_expired(now=now)
    bodies = outbox_forget_bodies(now=now, deadline=deadline)
    files = media_orphans_remove(now=now, deadline=deadline)
    return (
        f"expired sessions cleared; {tokens} expired API tokens, {bodies} email bodies, {files} orphaned files removed"
    )
