"""Service-credit tiers: which tier a month's uptime falls in, what it is worth, and where a
table has gaps or overlaps. Pure Python (no Django), exact Decimals throughout."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from portal.domain.formats import minor_unit_exponent, percent_number

HUNDRED = Decimal(100)
ZERO = Decimal(0)


@dataclass(frozen=True)
class Tier:
    """A range of uptime percent with each bound inclusive or exclusive; None is an open bound."""

    lower: Decimal | None
    upper: Decimal | None
    percent: Decimal
    lower_inclusive: bool = True
    upper_inclusive: bool = True

    def __post_init__(self):
        for name in ("lower", "upper", "percent"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Decimal):
                object.__setattr__(self, name, Decimal(str(value)))
        if self.lower is not None and self.upper is not None and self.lower > self.upper:
            raise ValueError(f"tier lower bound {self.lower} is above its upper bound {self.upper}")
        if not ZERO <= self.percent <= HUNDRED:
            raise ValueError(f"tier percent {self.percent} is outside 0-100")

    def contains(self, uptime: Decimal) -> bool:
        if self.lower is not None and (uptime < self.lower or (uptime == self.lower and not self.lower_inclusive)):
            return False
        return self.upper is None or uptime < self.upper or (uptime == self.upper and self.upper_inclusive)

    def __str__(self) -> str:
        return f"{Range(self.lower, self.upper, self.lower_inclusive, self.upper_inclusive)} → {percent_number(self.percent)}%"


def credit_percent(uptime_percent: Decimal, tiers) -> Decimal | None:
    """The credit percent of the tier that matches; where several match (a shared bound, as in
    Kaluari's 98.0%), the one better for the customer. None where no tier matches."""
    matching = [t.percent for t in tiers if t.contains(uptime_percent)]
    return max(matching) if matching else None


def credit_amount(percent: Decimal, invoice_amount: Decimal, currency: str) -> Decimal:
    """The tier's percent of the month's invoice, rounded half-up to the currency's minor unit."""
    raw = Decimal(percent) * Decimal(invoice_amount) / HUNDRED
    return raw.quantize(minor_unit_exponent(currency), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Range:
    lower: Decimal | None
    upper: Decimal | None
    lower_inclusive: bool = True
    upper_inclusive: bool = True

    def __str__(self) -> str:
        lo = "(-∞" if self.lower is None else ("[" if self.lower_inclusive else "(") + percent_number(self.lower)
        hi = "+∞)" if self.upper is None else percent_number(self.upper) + ("]" if self.upper_inclusive else ")")
        return f"{lo}, {hi}"


@dataclass(frozen=True)
class Coverage:
    gaps: list[Range]  # uptimes below the guarantee that no tier covers
    overlaps: list[Range]  # uptimes that more than one tier covers


def coverage(tiers, guarantee: Decimal) -> Coverage:
    """Where [0, guarantee) is covered by no tier, and where by more than one.

    The line is cut at every bound into points (the bounds themselves) and the open stretches
    between them; each piece is tested once (a stretch by its midpoint), then neighbouring pieces
    with the same verdict are joined. Exact, and honest about inclusive and exclusive bounds."""
    guarantee = Decimal(guarantee)
    cuts = sorted(
        {ZERO, guarantee} | {b for t in tiers for b in (t.lower, t.upper) if b is not None and ZERO <= b <= guarantee}
    )
    # Pieces in order: [0], (0, c1), [c1], (c1, c2), ... [guarantee) excluded: the guarantee is met there.
    pieces: list[tuple[Decimal, Decimal, bool]] = []  # (lo, hi, is_point)
    for i, c in enumerate(cuts):
        if c < guarantee:
            pieces.append((c, c, True))
        if i + 1 < len(cuts):
            pieces.append((c, cuts[i + 1], False))

    def count(piece) -> int:
        lo, hi, is_point = piece
        probe = lo if is_point else (lo + hi) / 2
        return sum(1 for t in tiers if t.contains(probe))

    def runs(pred) -> list[Range]:
        out: list[Range] = []
        start = end = None
        for piece in pieces + [None]:
            if piece is not None and pred(count(piece)):
                if start is None:
                    start = piece
                end = piece
                continue
            if start is not None:
                out.append(Range(start[0], end[1], start[2], end[2]))
                start = None
        return out

    return Coverage(gaps=runs(lambda n: n == 0), overlaps=runs(lambda n: n > 1))
