"""The emails of a maintenance notice, reminder or cancellation about a contract: one outbox row per
person, keyed maintenance:<window>:r<revision>:<kind>:contract:<contract>:user:<user>, so
that each goes out once."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from django.db.models import Q

from portal.core.notify_rules import Kind as Rule
from portal.core.notify_rules import Preferences, for_contract, members_prefetch
from portal.core.outbox import Email
from portal.core.unsubscribe import email_to
from portal.models import OutboxMessage

from ..models import MaintenanceNotice
from ..subscribers.emails import addresses, following, subscriber_emails, subscribers_for, subscribers_sent
from .ical import NOTICE_FILENAME
from .judging import DEFAULT_NOTICE, NOTICE_KINDS, Kind, service_ids

TEMPLATES = {
    Kind.ANNOUNCE: "maintenance_notice",
    Kind.UPDATE: "maintenance_notice",
    Kind.REMINDER: "maintenance_reminder",
    Kind.CANCEL: "maintenance_cancelled",
}


def recipients_prefetch() -> tuple:
    """What notice_emails reads of a contract: its services, designated contacts and members."""
    return ("services", "contacts", members_prefetch())


def members_preferences(contracts) -> Preferences:
    """Every member's email choices of the contracts' organisations (recipients_prefetch loaded),
    in one query, for notice_emails' `prefs`."""
    prefs = Preferences()
    prefs.load(u.pk for c in contracts for u in c.organisation.users.all())
    return prefs


def notice_emails(
    window, contract, kind: str, version, *, short_notice: bool = False, affected: bool = True, prefs=None
) -> list[Email]:
    """The notice to each person the email rule lets through (portal.core.notify_rules: mandatory for
    the contract's designated contacts, chosen by its other members), each with the window as an
    .ics (ical.notice_attachment: the same event as the feed's, at this revision)."""
    csids = service_ids(contract)
    ctx = {
        "window": window,
        "contract": contract,
        "kind": kind,
        "tz": version.timezone if version else "UTC",
        "notice": version.maintenance_notice if version else DEFAULT_NOTICE,
        "services": [s for s in window.services.all() if s.pk in csids] or list(window.services.all()),
        "short_notice": short_notice,
        "affected": affected,
    }
    prefix = f"maintenance:{window.pk}:r{window.revision}:{kind}:contract:{contract.pk}"
    return [
        replace(email_to(r, key=f"{prefix}:user:{r.user.pk}", template=TEMPLATES[kind], context=ctx), attachments=(NOTICE_FILENAME,))
        for r in for_contract(Rule.MAINTENANCE, contract, prefs=prefs)
    ]  # fmt: skip


def subscriber_notice_emails(window, kind: str, *, members: list[Email], subscribers=None) -> list[Email]:
    """The same notice to the status page's subscribers who follow one of the window's services
    (contracts.subscribers), keyed maintenance:<window>:r<revision>:<kind>:subscriber:<pk>; none to
    an address that `members` (the members' emails of this notice) already reaches. `subscribers`:
    who gets it (by default those following the window's services now)."""
    services = list(window.services.all())
    if subscribers is None:
        sids = [s.pk for s in services]
        subscribers = following(subscribers_for(sids), sids)
    return subscriber_emails(
        subscribers=subscribers, key=f"maintenance:{window.pk}:r{window.revision}:{kind}",
        template="status_maintenance", skip=addresses(members),
        context={"window": window, "kind": kind, "services": [s.name for s in services]},
    )  # fmt: skip


def subscribers_told(window) -> list:
    """The subscribers (still subscribed) who were sent a notice of any revision of the window: its
    cancellation goes to them, whatever its services are now."""
    return subscribers_sent(f"maintenance:{window.pk}:r")


def _subscriber_keys(windows: Iterable) -> list[str]:
    """The outbox keys of the subscribers' notices of any revision of the windows (as
    subscriber_notice_emails writes them): maintenance:<window>:r<revision>:<kind>:subscriber:<pk>."""
    prefixes = Q()
    for w in windows:
        prefixes |= Q(key__startswith=f"maintenance:{w.pk}:r")
    return list(OutboxMessage.objects.filter(prefixes, key__contains=":subscriber:").values_list("key", flat=True))


def told_earlier(windows: list, notices: Iterable[tuple[int, int, int]] | None = None) -> set[int]:
    """The one rule of "was anyone told of the window": the windows (of `windows`) of which a notice
    of a revision before the current one went out, to a contract (its MaintenanceNotice rows of
    NOTICE_KINDS; `notices`: those rows' (window, contract, revision) when the caller has them) or to
    a status page subscriber (the outbox keys subscribers_told reads). A new revision of such a window
    is news of a change: its notice is due at once and subscribers hear it as an update."""
    revision = {w.pk: w.revision for w in windows}
    if notices is None:
        rows = MaintenanceNotice.objects.filter(window__in=list(revision), kind__in=NOTICE_KINDS)
        notices = rows.values_list("window_id", "contract_id", "revision")
    told = {wid for wid, _, rev in notices if wid in revision and rev < revision[wid]}
    if rest := [w for w in windows if w.pk not in told and w.revision > 1]:
        for key in _subscriber_keys(rest):
            _, wid, rev, kind, *_ = key.split(":")
            if kind in NOTICE_KINDS and int(rev.removeprefix("r")) < revision[int(wid)]:
                told.add(int(wid))
    return told
