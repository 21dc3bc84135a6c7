"""Small pieces of HTML and text shared by the claim and month admins: badges, uptime, the
contract, links, a month's breakdown and a claim's audit trail in the page's terms."""

from __future__ import annotations

from decimal import Decimal

from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

from portal.domain import formats
from portal.domain.formats import in_tz, money

from ..figures import breakdown_lines
from ..models import ClaimEvent, MonthlyUptime


def badge(kind: str, value: str, label: str, title: str = ""):
    return format_html('<span class="credit-badge {}-{}" title="{}">{}</span>', kind, value, title, label)


def gap_badge(flagged: bool):
    if not flagged:
        return ""
    return badge("credit", "gap", "gap: review", "Below the guarantee, in a gap of the credit table: no tier applies")


def uptime_text(value: Decimal | None) -> str:
    """98.880%: three decimals, as the customer's email shows it (the exact figure is a tooltip)."""
    return formats.percent(value, places=3)


def uptime_html(value: Decimal):
    return format_html('<span title="{}">{}</span>', formats.percent(value), uptime_text(value))


def contract_html(contract):
    return format_html(
        '<strong title="{}">{}</strong><br><span class="credit-quiet">{}</span>',
        contract.name,
        contract.reference,
        contract.organisation.name,
    )


def amount_of(text, currency: str) -> str:
    """An amount stored as text in an audit row ("None" where there was none)."""
    return "—" if text in (None, "", "None") else money(Decimal(text), currency)


def admin_link(name: str, pk, text: str):
    try:
        return format_html('<a href="{}">{}</a>', reverse(f"admin:{name}", args=[pk]), text)
    except NoReverseMatch:
        return text


def breakdown_rows(month: MonthlyUptime) -> list[dict]:
    """The month's breakdown (credits.figures.breakdown_lines: the minutes as closed, titles and
    times read now) in the page's terms: what, when (contract time), why, and its minutes counted
    as downtime or excluded."""
    tz, rows = month.sla_version.timezone, []
    for line in breakdown_lines(row=month):
        outage = line.kind == "outage"
        change = "contracts_outage_change" if outage else "contracts_maintenancewindow_change"
        end = "ongoing" if line.ongoing else in_tz(line.end, tz)
        rows.append({
            "kind": "Outage" if outage else "Maintenance", "link": admin_link(change, line.id, line.title),
            "when": f"{in_tz(line.start, tz)} – {end}" if line.start else "—", "cause": line.cause_label,
            "counted": line.down_minutes, "excluded": line.excluded_minutes, "reason": line.reason,
        })  # fmt: skip
    return rows


def event_summary(event: ClaimEvent, currency: str) -> str:
    data = event.data or {}
    if event.kind == ClaimEvent.Kind.ADJUSTED:
        change = f"{amount_of(data.get('from'), currency)} → {amount_of(data.get('to'), currency)}"
        return f"{change}: {data.get('reason', '')}"
    if event.kind == ClaimEvent.Kind.APPROVED:
        return amount_of(data.get("amount"), currency)
    if event.kind == ClaimEvent.Kind.REJECTED:
        return data.get("reason", "")
    return ", ".join(f"{k}: {v}" for k, v in data.items())


def month_context(month: MonthlyUptime) -> dict:
    return {
        "month": month,
        "tz": month.sla_version.timezone,
        "uptime": uptime_text(month.uptime_percent),
        "uptime_exact": formats.percent(month.uptime_percent),
        "gap": gap_badge(month.flagged),
        "month_status": badge("month", month.status, month.get_status_display()),
        "breakdown": breakdown_rows(month),
        "reopenings": month.reopenings.select_related("actor"),
    }


class AdminMedia:
    css = {"all": ["admin-extra/credits.css"]}
