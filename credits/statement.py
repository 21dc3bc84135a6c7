"""The SLA statement of one contract and month, which a customer reads as a page or downloads as a
PDF (and can attach to a claim): the month's uptime against the guarantee, every outage and
maintenance window as it counted, the ticket attainment by priority with the filers' satisfaction,
the credit tier and amount, and the claim filed for the month.

Figures come from the same reads as the uptime page and the staff compliance report: the month's
closed figures, or the month so far / an ended month not closed yet, clearly labelled
(credits.figures.contract_month_figures), and tickets.selectors.contract_attainment. A fixed
number of queries whatever the number of tickets, outages and windows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from contracts.choices import Priority
from contracts.models import Contract, PriorityTerm, SLAVersion
from contracts.selectors import Versions
from portal.domain.dates import month_bounds
from tickets.attainment import ALL, Attainment, totals
from tickets.charts import satisfaction_text, share_text
from tickets.selectors import contract_attainment

from .figures import MonthFigures, MonthUnavailable, contract_month_figures
from .models import Claim
from .selectors import claim_deadline

__all__ = ["MonthUnavailable", "Statement", "contract_statement"]

_LAST_MOMENT = timedelta(microseconds=1)


@dataclass(frozen=True)
class AttainmentLine:
    """One priority (or all of them) of the statement's ticket table, in words."""

    label: str
    attainment: Attainment
    answered: str  # "3 of 4 (75%)", "none decided, 1 pending", "" without counted tickets
    resolved: str
    within_limit: str

    @classmethod
    def of(cls, a: Attainment) -> AttainmentLine:
        limit_pending = a.counted - a.within_limit - a.breached
        return cls(
            label="All priorities" if a.priority == ALL else priority_label(a.priority),
            attainment=a,
            answered=share_text(a.response_met, a.response_missed, a.response_pending) or "—",
            resolved=share_text(a.resolution_met, a.resolution_missed, a.resolution_pending) or "—",
            within_limit=share_text(a.within_limit, a.breached, limit_pending) or "—",
        )


@dataclass(frozen=True)
class Statement:
    contract: Contract  # organisation and sla loaded
    month: date
    version: SLAVersion | None  # the version the month is judged by (in force at its last moment so far)
    timezone: str
    figures: MonthFigures
    attainment: tuple[Attainment, ...]  # one per priority of the terms (and any other a ticket has)
    total: Attainment
    claim: Claim | None
    claim_deadline: datetime | None  # when claims for the month close (terms in force now)
    generated_at: datetime

    @property
    def organisation(self):
        return self.contract.organisation

    @property
    def lines(self) -> list[AttainmentLine]:
        return [AttainmentLine.of(a) for a in self.attainment]

    @property
    def total_line(self) -> AttainmentLine:
        return AttainmentLine.of(self.total)

    @property
    def satisfaction(self) -> str:
        """The filers' ratings of the month's resolved tickets (tickets.satisfaction), in words."""
        return satisfaction_text(self.total)

    @property
    def is_final(self) -> bool:
        return self.figures.state == MonthFigures.CLOSED

    @property
    def state_label(self) -> str:
        return {
            MonthFigures.CLOSED: "Closed",
            MonthFigures.SO_FAR: "This month so far (not final)",
            MonthFigures.NOT_CLOSED: "Ended, not closed yet (not final)",
        }[self.figures.state]

    @property
    def claimable(self) -> bool:
        """A claim can still be filed for the month (ended, none filed, inside the window)."""
        return (
            self.claim is None
            and self.figures.state != MonthFigures.SO_FAR
            and self.claim_deadline is not None
            and self.generated_at < self.claim_deadline
        )


def _priority_order(priority: str) -> tuple[int, str]:
    values = list(Priority.values)
    return (values.index(priority) if priority in values else len(values), priority)


def contract_statement(*, contract: Contract, month: date, now: datetime) -> Statement:
    """The statement of `contract` (organisation, sla and services loaded) for `month`.
    MonthUnavailable (with the reason in words) for a month that has not started or that the
    contract did not run in."""
    month = month.replace(day=1)
    figures = contract_month_figures(contract=contract, month=month, now=now)
    versions = Versions([contract.sla_id])
    # The terms that judged the month: in force at its last moment (a part month's period ends earlier).
    judged_at = min(month_bounds(month.year, month.month, figures.timezone)[1] - _LAST_MOMENT, now)
    version = versions.at(contract.sla_id, judged_at) or versions.shown(contract.sla_id, now)
    rows = contract_attainment(contracts=[contract], first=month, last=month, now=now)[contract.pk]
    found = {priority: a for (m, priority), a in rows.items() if m == month}
    terms = list(PriorityTerm.objects.filter(version=version).values_list("priority", flat=True)) if version else []
    priorities = sorted({*terms, *found}, key=_priority_order)
    attainment = tuple(found.get(p) or Attainment(month, p) for p in priorities)
    return Statement(
        contract=contract,
        month=month,
        version=version,
        timezone=figures.timezone,
        figures=figures,
        attainment=attainment,
        total=totals(found.values(), month=month),
        claim=Claim.objects.filter(contract=contract, month=month).first(),
        claim_deadline=claim_deadline(version=version, month=month) if version else None,
        generated_at=now,
    )


def priority_label(priority: str) -> str:
    return Priority(priority).label if priority in Priority.values else priority


# --- The PDF: the statement page's own HTML, printed by WeasyPrint -----------------------------
# WeasyPrint is imported when a PDF is made, not when the portal starts (it loads Pango).
def static_file(url: str, *, prefix: str) -> tuple[bytes, str]:
    """The bytes and content type of one of our static files named by `url` (which must start with
    `prefix`: the page's base URL joined with STATIC_URL), read from disk: the staticfiles finders,
    else STATIC_ROOT after collectstatic (where the hashed names live). ValueError otherwise."""
    import mimetypes
    from pathlib import Path
    from urllib.parse import unquote, urlsplit

    from django.contrib.staticfiles import finders
    from django.contrib.staticfiles.storage import staticfiles_storage

    if not url.startswith(prefix):
        raise ValueError(f"the statement loads only our own static files, not {url}")
    name = unquote(urlsplit(url[len(prefix) :]).path)
    path = finders.find(name)  # SuspiciousFileOperation for a name outside its folders
    if not path:
        try:
            path = staticfiles_storage.path(name)
        except NotImplementedError:  # a storage without local files
            path = None
    if not path or not Path(path).is_file():
        raise ValueError(f"no static file {name}")
    return Path(path).read_bytes(), mimetypes.guess_type(name)[0] or "application/octet-stream"


def static_prefix(base_url: str) -> str:
    from urllib.parse import urljoin, urlsplit

    from django.conf import settings

    return urljoin(base_url, urlsplit(settings.STATIC_URL).path)


class _ScreenOnlyCss:
    """Drops WeasyPrint's warnings about the screen-only CSS of portal.css (sticky captions,
    container units, SVG paint, width media queries), which it ignores in print as it should: one
    line per rule and PDF would bury a real problem. Errors (a stylesheet that failed to load) pass."""

    NOISE = ("Ignored `", "Expected a media type", "Invalid media type")

    def filter(self, record) -> bool:
        return record.levelno >= 40 or not str(record.msg).startswith(self.NOISE)


_QUIET = _ScreenOnlyCss()


def render_pdf(html: str, *, base_url: str) -> bytes:
    """The page's HTML as a PDF (print media: static/css/statement.css's print rules apply). Only
    our own static files are loaded, from disk (static_file); any other URL is refused and never
    fetched, not even over HTTP from our own server."""
    import logging

    from weasyprint import HTML
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    logging.getLogger("weasyprint").addFilter(_QUIET)  # once: addFilter keeps one of each
    prefix = static_prefix(base_url)

    class StaticFilesOnly(URLFetcher):
        def fetch(self, url, headers=None):
            body, content_type = static_file(url, prefix=prefix)
            return URLFetcherResponse(url, body, {"Content-Type": content_type})

    return HTML(string=html, base_url=base_url, url_fetcher=StaticFilesOnly()).write_pdf()
