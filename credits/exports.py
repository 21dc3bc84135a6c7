"""CSV exports of claims and monthly uptime, for finance and account managers.

Streamed: rows are read with iterator(chunk_size=CHUNK) over one joined query (a fixed number of
queries, however many rows; a month's breakdown is not read) and written out a chunk at a time. Every cell is guarded against CSV
("formula") injection: a spreadsheet runs a cell that starts with = + - @ (or a tab or carriage
return), and organisation and contract names, or a decision's reason, are typed by people.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal

from django.http import StreamingHttpResponse
from django.utils import timezone

from portal.domain import formats
from portal.domain.formats import amount

from .models import Claim, MonthlyUptime

CHUNK = 500
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

CLAIM_COLUMNS = [
    "id", "organisation", "contract_reference", "contract_name", "month", "status", "uptime_percent", "guarantee",
    "tier_percent", "eligible_amount", "amount", "currency", "credit_kind", "submitted_at", "decided_at",
    "decided_by", "decision_reason", "flagged",
]  # fmt: skip
UPTIME_COLUMNS = [
    "organisation", "contract_reference", "contract_name", "month", "total_minutes", "down_minutes",
    "excluded_minutes", "uptime_percent", "guarantee", "tier_percent", "credit_amount", "currency", "flagged",
    "status", "closed_at",
]  # fmt: skip


def cell(value) -> str:
    """A value as CSV text; text a spreadsheet would run as a formula gets a leading quote."""
    if value is None:
        text = ""
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, datetime):
        text = value.astimezone(UTC).isoformat()
    elif isinstance(value, date):
        text = f"{value:%Y-%m}"
    else:
        text = str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def number(value: Decimal | None) -> str | None:
    """99.8 for 99.800, 10 for 10.000: a stored figure without its padding (never 1E+1)."""
    return None if value is None else formats.number(value)


class _Echo:
    """csv.writer writes to this and gets back the line it wrote."""

    def write(self, value: str) -> str:
        return value


def _lines(header: list[str], rows: Iterable[list]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(header)
    chunk: list[str] = []
    for row in rows:
        chunk.append(writer.writerow([cell(v) for v in row]))
        if len(chunk) == CHUNK:
            yield "".join(chunk)
            chunk = []
    if chunk:
        yield "".join(chunk)


def csv_response(name: str, header: list[str], rows: Iterable[list]) -> StreamingHttpResponse:
    filename = f"{name}-{timezone.now():%Y%m%d-%H%M}.csv"
    response = StreamingHttpResponse(_lines(header, rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def claim_rows(queryset) -> Iterator[list]:
    qs = queryset.select_related("contract__organisation", "monthly_uptime", "decided_by").defer(
        "monthly_uptime__breakdown"
    )
    for c in qs.iterator(chunk_size=CHUNK):
        m = c.monthly_uptime
        yield [
            c.pk, c.contract.organisation.name, c.contract.reference, c.contract.name, c.month, c.status,
            number(m.uptime_percent), number(m.guarantee), number(m.tier_percent),
            amount(c.eligible_amount, c.currency), amount(c.amount, c.currency), c.currency, c.credit_kind,
            c.submitted_at, c.decided_at, c.decided_by.email if c.decided_by_id else None, c.decision_reason,
            m.flagged,
        ]  # fmt: skip


def uptime_rows(queryset) -> Iterator[list]:
    for m in queryset.select_related("contract__organisation").defer("breakdown").iterator(chunk_size=CHUNK):
        yield [
            m.contract.organisation.name, m.contract.reference, m.contract.name, m.month, m.total_minutes,
            m.down_minutes, m.excluded_minutes, number(m.uptime_percent), number(m.guarantee),
            number(m.tier_percent), amount(m.credit_amount, m.currency), m.currency, m.flagged, m.status, m.closed_at,
        ]  # fmt: skip


def claims_csv_response(queryset=None) -> StreamingHttpResponse:
    queryset = Claim.objects.all() if queryset is None else queryset
    return csv_response("claims", CLAIM_COLUMNS, claim_rows(queryset))


def uptime_csv_response(queryset=None) -> StreamingHttpResponse:
    queryset = MonthlyUptime.objects.all() if queryset is None else queryset
    return csv_response("monthly-uptime", UPTIME_COLUMNS, uptime_rows(queryset))
