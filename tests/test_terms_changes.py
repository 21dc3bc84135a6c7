"""What a new SLA version changes, in words (portal.domain.terms_changes): pure, a table of cases."""

from dataclasses import replace
from datetime import time, timedelta
from decimal import Decimal

import pytest

from portal.domain.terms_changes import Change, Clock, Level, Terms, by_section, changes
from portal.domain.tiers import Tier

H, M = (lambda n: timedelta(hours=n)), (lambda n: timedelta(minutes=n))
D = Decimal
NBO_24x7, NBO_BUSINESS = "24x7 (Africa/Nairobi)", "Kenya business hours"

KALUARI = Terms(
    guarantee=D("99.8"), timezone="Africa/Nairobi", business_hours=NBO_BUSINESS, credit_kind="Refund",
    claim_window_days=30, exclusion_causes=("Force majeure", "Distributed denial of service attack"),
    clocks={
        "P1": Clock(NBO_24x7, NBO_24x7, M(15), H(1), H(1)),
        "P3": Clock(NBO_BUSINESS, NBO_BUSINESS, H(4), H(12), H(24)),
    },
    levels={1: Level("Email support", "Email", "support@kaluari.com"), 3: Level("Call your Account Manager", "Phone")},
    dwells={(1, "P1"): M(15), (1, "P3"): M(30)},
    tiers=(Tier(D("98.0"), D("99.0"), D("10")), Tier(None, D("90.0"), D("50"), True, False)),
    maintenance_notice=H(48), offpeak=(time(22), time(6)), maintenance_annual_cap=H(12),
)  # fmt: skip


def test_the_same_terms_change_nothing():
    assert changes(KALUARI, replace(KALUARI)) == []


CASES = {
    "guarantee": (
        {"guarantee": D("99.500")},
        [("Uptime guarantee and credits", "Monthly uptime guarantee", "99.8%", "99.5%")],
    ),
    "a tier's credit": (
        {"tiers": (Tier(D("98.0"), D("99.0"), D("15")), KALUARI.tiers[1])},
        [(
            "Uptime guarantee and credits", "Credit for monthly uptime between 98.0% (included) and 99.0% (included)",
            "10.0% of the invoice", "15.0% of the invoice",
        )],
    ),
    "a tier added and one removed": (
        {"tiers": (KALUARI.tiers[0], Tier(None, D("95.0"), D("25"), True, False))},
        [
            ("Uptime guarantee and credits", "Credit for monthly uptime less than 95.0%", "—", "25.0% of the invoice"),
            ("Uptime guarantee and credits", "Credit for monthly uptime less than 90.0%", "50.0% of the invoice", "—"),
        ],
    ),
    "claim window and credit kind": (
        {"claim_window_days": 1, "credit_kind": "Service credit"},
        [
            ("Uptime guarantee and credits", "Credit paid as", "Refund", "Service credit"),
            ("Uptime guarantee and credits", "Claim window", "30 days after the month's end", "1 day after the month's end"),
        ],
    ),
    "an exclusion dropped": (
        {"exclusion_causes": ("Force majeure",)},
        [(
            "Uptime guarantee and credits", "Downtime excluded: Distributed denial of service attack", "excluded",
            "counted against uptime",
        )],
    ),
    "a clock": (
        {"clocks": {**KALUARI.clocks, "P1": Clock(NBO_24x7, NBO_24x7, M(30), H(1), H(1))}},
        [("Support clocks", "P1 first response", f"15 min ({NBO_24x7})", f"30 min ({NBO_24x7})")],
    ),
    "a resolution target and its calendar": (
        {"clocks": {**KALUARI.clocks, "P3": Clock(NBO_BUSINESS, NBO_24x7, H(4), H(24), H(24))}},
        [(
            "Support clocks", "P3 resolution", f"target 12 h, limit 24 h ({NBO_BUSINESS})", f"within 24 h ({NBO_24x7})",
        )],
    ),
    "a priority added": (
        {"clocks": {**KALUARI.clocks, "P2": Clock(NBO_24x7, NBO_24x7, H(1), H(4), H(4))}},
        [
            ("Support clocks", "P2 first response", "—", f"1 h ({NBO_24x7})"),
            ("Support clocks", "P2 resolution", "—", f"within 4 h ({NBO_24x7})"),
        ],
    ),
    "escalation": (
        {
            "levels": {**KALUARI.levels, 3: Level("Call your Account Manager", "Phone", "+254 700 000 000")},
            "dwells": {(1, "P1"): M(20), (1, "P3"): M(30), (2, "P3"): H(4)},
            "escalation_ack": H(4), "escalation_ack_calendar": NBO_BUSINESS,
        },
        [
            ("Escalation", "Escalation requests acknowledged within", "the priority's first-response time", f"4 h ({NBO_BUSINESS})"),
            ("Escalation", "Level 3", "Call your Account Manager (Phone)", "Call your Account Manager (Phone, +254 700 000 000)"),
            ("Escalation", "P1: moves up from level 1 after", "15 min", "20 min"),
            ("Escalation", "P3: moves up from level 2 after", "—", "4 h"),
        ],
    ),
    "maintenance": (
        {"maintenance_notice": H(72), "offpeak": (time(23), time(5)), "maintenance_annual_cap": H(10)},
        [
            ("Maintenance", "Notice before maintenance", "48 h", "72 h"),
            ("Maintenance", "Off-peak hours for maintenance", "22:00-06:00 local time", "23:00-05:00 local time"),
            ("Maintenance", "Maintenance per calendar year, at most", "12 h", "10 h"),
        ],
    ),
    "timezone and business hours": (
        {"timezone": "Africa/Kampala", "business_hours": "Uganda business hours"},
        [
            ("Uptime guarantee and credits", "Timezone of months and clocks", "Africa/Nairobi", "Africa/Kampala"),
            ("Support clocks", "Business hours", NBO_BUSINESS, "Uganda business hours"),
        ],
    ),
}  # fmt: skip


@pytest.mark.parametrize(("edit", "expected"), CASES.values(), ids=CASES.keys())
def test_each_term_that_changes_is_told_as_it_was_and_as_it_will_be(edit, expected):
    assert changes(KALUARI, replace(KALUARI, **edit)) == [Change(*e) for e in expected]


def test_changes_come_section_by_section():
    after = replace(KALUARI, maintenance_notice=H(24), guarantee=D("99.9"), dwells={(1, "P1"): M(15)})
    found = changes(KALUARI, after)
    assert [c.section for c in found] == ["Uptime guarantee and credits", "Escalation", "Maintenance"]
    assert [(s, len(items)) for s, items in by_section(found)] == [
        ("Uptime guarantee and credits", 1), ("Escalation", 1), ("Maintenance", 1),
    ]  # fmt: skip
    assert str(found[0]) == "Monthly uptime guarantee: 99.8% → 99.9%"
