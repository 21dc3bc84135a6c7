"""portal/domain/lint.py: warnings about SLA terms that are legal but probably wrong. Pure Python: the
terms are built from the shipped template data, not read from the database."""

from datetime import timedelta
from decimal import Decimal

import pytest

from contracts.sla_templates import TEMPLATES
from portal.domain.lint import PriorityTargets, lint_terms
from portal.domain.tiers import Tier

H = lambda n: timedelta(hours=n)  # noqa: E731


def terms(key: str) -> dict:
    """lint_terms' keyword arguments for a shipped template."""
    spec = TEMPLATES[key]
    return {
        "guarantee": spec["version"]["uptime_guarantee"],
        "tiers": [Tier(lo, hi, pct, lo_inc, hi_inc) for lo, lo_inc, hi, hi_inc, pct in spec["tiers"]],
        "priorities": [PriorityTargets(str(row[0]), row[3], row[4], row[5]) for row in spec["priorities"]],
        "dwells": [(lvl, str(pri), dwell) for lvl, per in spec["dwells"] for pri, dwell in per.items()],
        "levels": [row[0] for row in spec["levels"]],
    }


def kaluari(**changes) -> dict:
    return {**terms("kaluari-cloud-backup"), **changes}


def replace_priority(priorities, name, **fields):
    out = []
    for p in priorities:
        if p.priority == name:
            p = PriorityTargets(
                p.priority,
                fields.get("first_response", p.first_response),
                fields.get("resolution_target", p.resolution_target),
                fields.get("resolution_limit", p.resolution_limit),
            )
        out.append(p)
    return out


def test_kaluari_terms_warn_of_exactly_the_two_gaps_and_the_overlap():
    warnings = lint_terms(**kaluari())
    assert warnings == [
        "Credit table gap: uptime in [90.0, 95.0) is below the 99.8% guarantee but earns no credit; "
        "such months are flagged for staff review.",
        "Credit table gap: uptime in (99.0, 99.8) is below the 99.8% guarantee but earns no credit; "
        "such months are flagged for staff review.",
        "Credit table overlap: uptime in [98.0, 98.0] matches more than one tier; the better one for the "
        "customer applies.",
    ]


def test_kaluari_terms_are_complete_for_the_lint():
    # The rest of the tests change one thing at a time: make sure the baseline is the full table.
    t = kaluari()
    assert [p.priority for p in t["priorities"]] == ["P1", "P2", "P3", "P4"]
    assert t["levels"] == [1, 2, 3, 4]
    assert len(t["dwells"]) == 16


def test_gapless_table_and_sound_priorities_give_no_warnings():
    tiers = [
        Tier(Decimal("99.0"), Decimal("99.8"), Decimal("10"), upper_inclusive=False),
        Tier(None, Decimal("99.0"), Decimal("25"), upper_inclusive=False),
    ]
    assert lint_terms(**kaluari(tiers=tiers)) == []


def test_resolution_target_after_its_limit_warns():
    t = kaluari()
    priorities = replace_priority(t["priorities"], "P3", resolution_target=H(25))  # limit 24 h
    warnings = lint_terms(**kaluari(priorities=priorities))
    assert warnings[3:] == ["P3: the resolution target (25 h) is after its limit (24 h)."]


def test_target_equal_to_limit_is_fine():
    t = kaluari()
    priorities = replace_priority(t["priorities"], "P3", resolution_target=H(24))
    assert len(lint_terms(**kaluari(priorities=priorities))) == 3  # only the credit table


def test_first_response_after_resolution_limit_warns():
    t = kaluari()
    priorities = replace_priority(t["priorities"], "P1", first_response=H(2))  # limit 1 h
    warnings = lint_terms(**kaluari(priorities=priorities))
    assert warnings[3:] == ["P1: first response (2 h) is after the resolution limit."]


@pytest.mark.parametrize(
    ("field", "what"), [("first_response", "first response"), ("resolution_limit", "resolution limit")]
)
def test_zero_clock_warns(field, what):
    t = kaluari()
    changes = {field: timedelta(0)}
    if field == "resolution_limit":
        changes["resolution_target"] = timedelta(0)
    priorities = replace_priority(t["priorities"], "P2", **changes)
    warnings = lint_terms(**kaluari(priorities=priorities))
    assert f"P2: a {what} of zero is breached the moment a ticket is filed." in warnings


def test_zero_dwell_warns():
    t = kaluari()
    dwells = [(lvl, pri, timedelta(0) if (lvl, pri) == (2, "P3") else d) for lvl, pri, d in t["dwells"]]
    warnings = lint_terms(**kaluari(dwells=dwells))
    assert warnings[3:] == ["Escalation level 2, P3: a dwell of zero skips the level at once."]


def test_missing_dwells_warn():
    t = kaluari()
    dwells = [(lvl, pri, d) for lvl, pri, d in t["dwells"] if (lvl, pri) not in {(4, "P4"), (2, "P4")}]
    warnings = lint_terms(**kaluari(dwells=dwells))
    assert warnings[3:] == ["P4: no dwell time at escalation level(s) 2, 4."]


def test_priority_with_no_dwell_at_all_warns():
    t = kaluari()
    dwells = [(lvl, pri, d) for lvl, pri, d in t["dwells"] if pri != "P1"]
    warnings = lint_terms(**kaluari(dwells=dwells))
    assert warnings[3:] == ["P1: no dwell time at escalation level(s) 1, 2, 3, 4."]


def test_dwell_for_unknown_priority_or_level_warns():
    t = kaluari()
    dwells = t["dwells"] + [(5, "P1", H(1)), (1, "STD", H(1))]
    warnings = lint_terms(**kaluari(dwells=dwells))
    assert "Escalation dwell for level 5, which is not on the ladder." in warnings
    assert "Escalation level 1: a dwell for STD, which has no row in the priority matrix." in warnings


def test_no_tiers_warns():
    warnings = lint_terms(**kaluari(tiers=[]))
    assert warnings == ["No credit tiers: a month below the guarantee earns no credit."]


def test_klart_template_warns_only_that_its_tiers_are_set_per_contract():
    # One priority, a one-rung ladder (email support: nowhere to escalate, so no dwells to miss), no tiers.
    assert lint_terms(**terms("klart-ai")) == ["No credit tiers: a month below the guarantee earns no credit."]


def test_tier_at_or_above_the_guarantee_warns():
    tiers = [*kaluari()["tiers"], Tier(Decimal("99.8"), Decimal("100"), Decimal("5"))]
    warnings = lint_terms(**kaluari(tiers=tiers))
    assert any(
        w.startswith("Credit tier [99.8, 100.0] → 5.0% starts at or above the 99.8% guarantee") for w in warnings
    )
