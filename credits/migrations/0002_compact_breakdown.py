"""Closed months keep a compact breakdown (credits.closing): what the month counted, by id, with
titles, causes and times read at display time. The verbose lists written before are converted;
going back rebuilds them from the outages and windows as they stand.

    {"outages": "outage id,minutes,1 if excluded else 0;...", "maintenance": "window id,kept,counted;..."}
"""

from django.db import migrations

BATCH = 200  # rows written before 0002 hold up to ~60 KB of breakdown each


def _rows(MonthlyUptime):
    """Every row's pk and breakdown, a batch at a time (by pk: no cursor stays open while writing)."""
    last = 0
    while True:
        batch = list(MonthlyUptime.objects.filter(pk__gt=last).order_by("pk").only("pk", "breakdown")[:BATCH])
        if not batch:
            return
        yield batch
        last = batch[-1].pk


def _pack(lines):
    return ";".join(",".join(str(int(x)) for x in line) for line in lines)


def _unpack(text):
    return [tuple(map(int, line.split(","))) for line in text.split(";")] if text else []


def compact(apps, schema_editor):
    MonthlyUptime = apps.get_model("credits", "MonthlyUptime")
    for batch in _rows(MonthlyUptime):
        changed = []
        for row in batch:
            if not isinstance(row.breakdown, list):
                continue  # already compact
            items = [b for b in row.breakdown if isinstance(b, dict) and b.get("id") is not None]
            row.breakdown = {
                "outages": _pack(
                    (b["id"], b.get("minutes", 0), bool(b.get("excluded")))
                    for b in items
                    if b.get("kind") != "maintenance"
                ),
                "maintenance": _pack(
                    (b["id"], b.get("minutes_kept", 0), b.get("minutes_counted", 0))
                    for b in items
                    if b.get("kind") == "maintenance"
                ),
            }
            changed.append(row)
        MonthlyUptime.objects.bulk_update(changed, ["breakdown"])


def _maintenance_reason(kept, counted):
    if not counted:
        return "Within the maintenance rules: excluded"
    if not kept:
        return "Outside the maintenance rules (notice, off-peak hours or annual cap): counted as downtime"
    return "Partly within the maintenance rules: the rest counts as downtime"


def verbose(apps, schema_editor):
    MonthlyUptime = apps.get_model("credits", "MonthlyUptime")
    Outage = apps.get_model("contracts", "Outage")
    MaintenanceWindow = apps.get_model("contracts", "MaintenanceWindow")
    labels = dict(Outage._meta.get_field("cause").choices)
    for batch in _rows(MonthlyUptime):
        rows = [r for r in batch if isinstance(r.breakdown, dict)]
        lines = {r.pk: (_unpack(r.breakdown.get("outages", "")), _unpack(r.breakdown.get("maintenance", ""))) for r in rows}
        outage_ids = {line[0] for o, _ in lines.values() for line in o}
        window_ids = {line[0] for _, m in lines.values() for line in m}
        outages = {o.pk: o for o in Outage.objects.filter(pk__in=outage_ids)}
        titles = dict(MaintenanceWindow.objects.filter(pk__in=window_ids).values_list("pk", "title"))
        for row in rows:
            items = []
            for oid, minutes, excluded in lines[row.pk][0]:
                o = outages.get(oid)
                cause = o.cause if o else ""
                label = labels.get(cause, cause)
                items.append({
                    "kind": "outage", "id": oid, "title": o.title if o else "", "cause": cause, "cause_label": label,
                    "start": o.starts_at.isoformat() if o else None,
                    "end": o.ends_at.isoformat() if o and o.ends_at else None,
                    "minutes": minutes, "excluded": bool(excluded),
                    "reason": f"Excluded: {label}" if excluded else "Counted as downtime",
                })  # fmt: skip
            for wid, kept, counted in lines[row.pk][1]:
                items.append({
                    "kind": "maintenance", "id": wid, "title": titles.get(wid, ""), "minutes_kept": kept,
                    "minutes_counted": counted, "reason": _maintenance_reason(kept, counted),
                })  # fmt: skip
            row.breakdown = items
        MonthlyUptime.objects.bulk_update(rows, ["breakdown"])


class Migration(migrations.Migration):
    dependencies = [
        ("credits", "0001_initial"),
        ("contracts", "0004_ends_at_indexes"),
    ]

    operations = [migrations.RunPython(compact, verbose)]
