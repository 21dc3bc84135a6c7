"""Beat runs the sweeps every minute; each is safe to run twice and on two machines at once. The
recompute runs after an edit that moves deadlines, once the edit has committed."""

from celery import shared_task
from django.conf import settings
from django.db import OperationalError, transaction
from django.utils import timezone

from portal.core.heartbeat import recorded

from . import mailbox_poll, recompute, sweeps
from .inbound.service import ingest


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, retry_backoff_max=30, max_retries=3)
@recorded("tickets-escalate")
def escalate_due_tickets() -> int:
    return sweeps.escalate_due_tickets()


# Longer limits than the default: the sweep runs the edits' overdue recomputes (every open ticket at
# worst); its lease is renewed batch by batch, so the next minute's sweep leaves it alone meanwhile.
@shared_task(
    autoretry_for=(OperationalError,), retry_backoff=True, retry_backoff_max=30, max_retries=3,
    soft_time_limit=3000, time_limit=3300,
)  # fmt: skip
@recorded("tickets-sla-deadlines")
def check_sla_deadlines() -> int:
    return sweeps.check_sla_deadlines()


@shared_task
@recorded("inbound-imap")
def poll_mailbox() -> str:
    """The inbound mailbox (INBOUND_IMAP_URL), every minute. No retry of its own: the next minute is
    one, and a mailbox that keeps failing (unreachable, a message that cannot be stored) leaves the
    heartbeat stale, which /healthz and the staff dashboard show."""
    if settings.INBOUND_IMAP is None:
        return "off: no mailbox to poll (INBOUND_IMAP_URL is not set)"
    result = mailbox_poll.poll(
        config=settings.INBOUND_IMAP,
        processed_folder=settings.INBOUND_IMAP_PROCESSED_FOLDER,
        batch=settings.INBOUND_IMAP_BATCH,
        ingest=ingest,
        timeout=settings.INBOUND_IMAP_TIMEOUT,
    )
    return str(result)


@shared_task(
    autoretry_for=(OperationalError,), retry_backoff=True, retry_backoff_max=60, max_retries=5,
    soft_time_limit=3000, time_limit=3300,
)  # fmt: skip
def recompute_deadlines(calendar_ids=(), version_ids=(), everything: bool = False, request_id=None) -> int:
    """The deadlines of the open tickets an edit's request names (tickets.recompute.recompute_run),
    of these calendars or SLA versions, or of every open ticket, in batches
    (tickets.recompute.tickets_recompute). Running it twice, or again after a failed batch, gives the
    same columns; recorded breaches stand."""
    if request_id is not None:
        return recompute.recompute_run(request_id)
    if everything:
        ids = recompute.tickets_active_ids()
    else:
        ids = recompute.tickets_touched(calendar_ids=calendar_ids, version_ids=version_ids)
    return recompute.tickets_recompute(ids)


def on_terms_moved(sender, *, calendar_ids=(), version_ids=(), reason: str = "", **kwargs) -> None:
    """contracts.calendars.terms_moved: a request written in the edit's transaction, its task
    enqueued once the edit commits (never for a rolled-back one, and never before the worker can
    read it). A task lost (the embedded broker forgets a message a killed worker had taken; a broker
    down at the commit) leaves the request to the minute's SLA sweep."""
    request = recompute.recompute_requested(
        calendar_ids=calendar_ids, version_ids=version_ids, reason=reason, now=timezone.now()
    )
    transaction.on_commit(lambda: recompute_deadlines.delay(request_id=request.pk), robust=True)
