"""The staff side of credits, in the Django admin, by responsibility:

- claims.ClaimAdmin: the review queue and the claim page; months.MonthlyUptimeAdmin: the closed
  months and the month page (reopen);
- base: what both share: read-only pages whose changes are POST-only operations calling one
  service in credits.services each, and CSV export (credits.exports);
- display, filters, forms: badges and wording, the sidebar filters, the operations' forms.

Each admin registers itself where it is defined; importing this package registers them all.
"""

from .claims import ClaimAdmin
from .months import MonthlyUptimeAdmin

__all__ = ["ClaimAdmin", "MonthlyUptimeAdmin"]
