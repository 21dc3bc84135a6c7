"""portal/domain/tiers.py: which tier a month's uptime falls in, what it is worth, and where a credit
table has gaps and overlaps. Pure Python: no database."""

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.domain.formats import minor_unit_exponent
from portal.domain.tiers import Range, Tier, coverage, credit_amount, credit_percent

D = Decimal

# Kaluari as written (PRODUCT.md): "between" includes both bounds, "less than" excludes.
KALUARI = [
    Tier(D("98.0"), D("99.0"), D("10")),
    Tier(D("95.0"), D("98.0"), D("25")),
    Tier(None, D("90.0"), D("50"), upper_inclusive=False),
]
KALUARI_GUARANTEE = D("99.8")


# --- credit_percent ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("uptime", "expected"),
    [
        ("100", None),  # a perfect month
        ("99.8", None),  # the guarantee is met
        ("99.5", None),  # the gap below the guarantee: no tier
        ("99.001", None),  # just above the 10% tier
        ("99.0", "10"),  # "between 98.0 and 99.0" includes 99.0
        ("98.99", "10"),
        ("98.001", "10"),
        ("98.0", "25"),  # two tiers match: the better one for the customer applies
        ("97.999", "25"),
        ("95.0", "25"),  # included lower bound
        ("94.999", None),  # the 90.0-95.0 gap
        ("92.5", None),
        ("90.0", None),  # "less than 90.0" excludes 90.0
        ("89.999", "50"),
        ("50", "50"),
        ("0", "50"),
    ],
)
def test_credit_percent_on_kaluari_table(uptime, expected):
    result = credit_percent(D(uptime), KALUARI)
    assert result == (None if expected is None else D(expected))


def test_credit_percent_with_no_tiers_is_none():
    assert credit_percent(D("12.5"), []) is None


def test_credit_percent_takes_exact_decimals_not_rounded_uptime():
    # 98.9999 is not 99.0 rounded for display: it is in the 10% tier and nowhere else; 94.9999 is in the gap.
    assert credit_percent(D("98.9999999"), KALUARI) == D("10")
    assert credit_percent(D("94.9999999"), KALUARI) is None
    assert credit_percent(D("89.9999999"), KALUARI) == D("50")


def test_open_upper_bound_and_exclusive_lower_bound():
    tiers = [Tier(D("50"), None, D("5"), lower_inclusive=False)]
    assert credit_percent(D("50"), tiers) is None
    assert credit_percent(D("50.001"), tiers) == D("5")
    assert credit_percent(D("100"), tiers) == D("5")


# --- credit_amount: half-up to the currency's minor unit ----------------------------------------
@pytest.mark.parametrize(
    ("percent", "invoice", "currency", "expected"),
    [
        ("25", "1000.02", "KES", "250.01"),  # 250.005: half-up, not banker's (250.00)
        ("25", "1000.01", "KES", "250.00"),  # 250.0025 rounds down
        ("10", "150000", "KES", "15000.00"),
        ("10", "12345", "JPY", "1235"),  # 1234.5: half-up to a whole yen (banker's gives 1234)
        ("10", "12344", "JPY", "1234"),  # 1234.4
        ("50", "1", "JPY", "1"),  # 0.5 yen rounds up
        ("10", "12.345", "BHD", "1.235"),  # 1.2345: three decimals for the dinar (banker's gives 1.234)
        ("10", "12.344", "BHD", "1.234"),
        ("50", "0.001", "BHD", "0.001"),  # 0.0005 rounds up
        ("25", "1000.02", "kes", "250.01"),  # the code is case-insensitive
        ("0", "1000", "EUR", "0.00"),
        ("100", "999.99", "EUR", "999.99"),
    ],
)
def test_credit_amount_rounds_half_up_to_minor_unit(percent, invoice, currency, expected):
    amount = credit_amount(D(percent), D(invoice), currency)
    assert amount == D(expected)
    # ... and carries exactly the currency's number of decimals.
    assert amount.as_tuple().exponent == D(expected).as_tuple().exponent


@pytest.mark.parametrize(("currency", "exponent"), [("JPY", "1"), ("KES", "0.01"), ("SEK", "0.01"), ("BHD", "0.001")])
def test_minor_unit_exponent(currency, exponent):
    assert minor_unit_exponent(currency) == D(exponent)
    assert minor_unit_exponent(currency).as_tuple().exponent == D(exponent).as_tuple().exponent


# --- coverage: gaps and overlaps -----------------------------------------------------------------
def test_kaluari_coverage_has_two_gaps_and_one_overlap():
    cov = coverage(KALUARI, KALUARI_GUARANTEE)
    assert cov.gaps == [
        Range(D("90.0"), D("95.0"), lower_inclusive=True, upper_inclusive=False),
        Range(D("99.0"), D("99.8"), lower_inclusive=False, upper_inclusive=False),
    ]
    assert cov.overlaps == [Range(D("98.0"), D("98.0"), lower_inclusive=True, upper_inclusive=True)]
    assert [str(g) for g in cov.gaps] == ["[90.0, 95.0)", "(99.0, 99.8)"]
    assert [str(o) for o in cov.overlaps] == ["[98.0, 98.0]"]


def test_table_without_gaps_or_overlaps():
    tiers = [
        Tier(D("99.0"), D("99.9"), D("10"), upper_inclusive=False),
        Tier(D("95.0"), D("99.0"), D("25"), upper_inclusive=False),
        Tier(None, D("95.0"), D("50"), upper_inclusive=False),
    ]
    cov = coverage(tiers, D("99.9"))
    assert cov.gaps == []
    assert cov.overlaps == []


def test_no_tiers_is_one_gap_from_zero_to_the_guarantee():
    cov = coverage([], D("99.9"))
    assert cov.gaps == [Range(D("0"), D("99.9"), lower_inclusive=True, upper_inclusive=False)]
    assert cov.overlaps == []


def test_tier_reaching_above_the_guarantee_leaves_no_gap_below_it():
    cov = coverage([Tier(D("0"), D("100"), D("5"))], D("99.9"))
    assert cov.gaps == [] and cov.overlaps == []


def test_exclusive_meeting_bounds_leave_a_point_gap():
    # [95, 99) and (99, 99.9): 99.0 itself earns nothing.
    tiers = [
        Tier(D("99.0"), D("99.9"), D("10"), lower_inclusive=False),
        Tier(None, D("99.0"), D("25"), upper_inclusive=False),
    ]
    cov = coverage(tiers, D("99.9"))
    assert cov.gaps == [Range(D("99.0"), D("99.0"), lower_inclusive=True, upper_inclusive=True)]
    assert cov.overlaps == []


# --- Tier refuses impossible values ---------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs",
    [
        {"lower": D("99"), "upper": D("98"), "percent": D("10")},  # upside down
        {"lower": D("90"), "upper": D("95"), "percent": D("-0.001")},
        {"lower": D("90"), "upper": D("95"), "percent": D("100.001")},
    ],
)
def test_tier_refuses_impossible_values(kwargs):
    with pytest.raises(ValueError):
        Tier(**kwargs)


def test_tier_accepts_edge_values_and_converts_to_decimal():
    tier = Tier(98, "98.0", 100)  # a single point, full refund
    assert tier.lower == D("98") and tier.upper == D("98") and tier.percent == D("100")
    assert isinstance(tier.upper, Decimal)
    assert tier.contains(D("98")) and not tier.contains(D("98.001"))
    assert Tier(None, D("90"), 0).percent == D("0")


# --- Properties --------------------------------------------------------------------------------
# Bounds from a small grid, so that shared and touching bounds (the interesting cases) are common.
GRID = [D(x) for x in ("0", "50", "89.999", "90", "95", "97.5", "98", "99", "99.5", "99.8", "99.9", "100")]
bound = st.one_of(st.none(), st.sampled_from(GRID))
percent = st.decimals(min_value=0, max_value=100, places=3)


@st.composite
def tiers_st(draw):
    lo, hi = draw(bound), draw(bound)
    if lo is not None and hi is not None and lo > hi:
        lo, hi = hi, lo
    return Tier(lo, hi, draw(percent), draw(st.booleans()), draw(st.booleans()))


tables = st.lists(tiers_st(), max_size=5)
uptimes = st.one_of(st.sampled_from(GRID), st.decimals(min_value=0, max_value=100, places=4))
guarantees = st.one_of(st.sampled_from(GRID), st.decimals(min_value=0, max_value=100, places=3))


def in_range(r: Range, x: Decimal) -> bool:
    if r.lower is not None and (x < r.lower or (x == r.lower and not r.lower_inclusive)):
        return False
    return r.upper is None or x < r.upper or (x == r.upper and r.upper_inclusive)


def probe_points(tiers, guarantee, extra):
    """Every bound, the midpoints between neighbouring bounds, points just either side, and extras."""
    marks = sorted({D(0), guarantee} | {b for t in tiers for b in (t.lower, t.upper) if b is not None})
    points = set(marks) | set(extra)
    for a, b in zip(marks, marks[1:], strict=False):
        points.add((a + b) / 2)
    for m in marks:
        points |= {m - D("0.0001"), m + D("0.0001")}
    return sorted(p for p in points if D(0) <= p < guarantee)


@settings(max_examples=300, deadline=None)
@given(tables, uptimes)
def test_credit_percent_is_the_best_matching_tier(tiers, uptime):
    matching = [t.percent for t in tiers if t.contains(uptime)]
    result = credit_percent(uptime, tiers)
    if not matching:
        assert result is None
    else:
        assert result in matching
        assert result == max(matching)


@settings(max_examples=300, deadline=None)
@given(tables, guarantees, st.lists(st.decimals(min_value=0, max_value=100, places=4), max_size=10))
def test_coverage_gaps_and_overlaps_are_exact(tiers, guarantee, extra):
    cov = coverage(tiers, guarantee)
    for point in probe_points(tiers, guarantee, extra):
        covering = sum(1 for t in tiers if t.contains(point))
        in_gap = any(in_range(g, point) for g in cov.gaps)
        in_overlap = any(in_range(o, point) for o in cov.overlaps)
        # A gap never contains a point a tier contains; a point outside every gap is covered.
        assert in_gap == (covering == 0), (point, cov)
        assert in_overlap == (covering > 1), (point, cov)
    # Gaps and overlaps stay inside [0, guarantee).
    for r in cov.gaps + cov.overlaps:
        assert r.lower >= 0 and r.upper <= guarantee
        assert not in_range(r, guarantee)
