"""CSV exports of claims and monthly uptime, for finance and account managers.

Streamed: rows are read with iterator(chunk_size=CHUNK) over one joined query (a fixed number of
queries, however many rows; a month's breakdown is not read) and written out a chunk at a time. Every cell is guarded against CSV
("formula") injection: a spreadsheet runs a cell that starts with = + - @ (or a tab or carriage
return), and organisation and contract names, or a decision's reason, are typed by people. Every
cell is quoted too: a spreadsheet whose locale separates with `;` split an unquoted `Globex;=1+1`
into two cells, the second a formula the guard never saw.

A UTF-8 byte order mark leads the file when asked for (`bom=True`; `?bom=1` where the request
reaches, `with_bom()`), else when the CSV_UTF8_BOM setting is on (off by default): Excel on Windows
reads a CSV without one in the machine's code page and garbles every name that is not ASCII.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal

from django.conf import settings
from django.http import StreamingHttpResponse
from django.utils import timezone

from portal.domain import formats
from portal.domain.formats import amount

from .models import Claim, MonthlyUptime

CHUNK = 500
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
BOM = "\ufeff"

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


def _lines(header: list[str], rows: Iterable[list], bom: bool = False) -> Iterator[str]:
    writer = csv.writer(_Echo(), quoting=csv.QUOTE_ALL)
    yield (BOM if bom else "") + writer.writerow(header)
    chunk: list[str] = []
    for row in rows:
        chunk.append(writer.writerow([cell(v) for v in row]))
        if len(chunk) == CHUNK:
            yield "".join(chunk)
            chunk = []
    if chunk:
        yield "".join(chunk)


def csv_response(
    name: str, header: list[str], rows: Iterable[list], *, bom: bool | None = None
) -> StreamingHttpResponse:
    """`bom`: lead with a UTF-8 byte order mark; None follows the CSV_UTF8_BOM setting."""
    if bom is None:
        bom = getattr(settings, "CSV_UTF8_BOM", False)
    filename = f"{name}-{timezone.now():%Y%m%d-%H%M}.csv"
    response = StreamingHttpResponse(_lines(header, rows, bom), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.has_bom = bom
    return response


def bom_asked(request) -> bool | None:
    """`?bom=1` asks for a byte order mark, `?bom=0` for none; None (no answer) leaves it to the setting."""
    value = request.GET.get("bom", "").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    return None


def with_bom(response: StreamingHttpResponse, bom: bool | None) -> StreamingHttpResponse:
    """A csv_response() with a byte order mark added or left out as `bom` asks (None: as it is),
    for a view that gets its response from code that does not know the request."""
    if bom is None or bom == response.has_bom:
        return response
    content = response.streaming_content
    if bom:
        response.streaming_content = _prefixed(content)
    else:
        response.streaming_content = _unprefixed(content)
    response.has_bom = bom
    return response


def _prefixed(content: Iterable[bytes]) -> Iterator[bytes]:
    yield BOM.encode()
    yield from content


def _unprefixed(content: Iterable[bytes]) -> Iterator[bytes]:
    first = True
    for part in content:
        yield part.removeprefix(BOM.encode()) if first else part
        first = False


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
