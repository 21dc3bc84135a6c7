from functools import lru_cache

from django.conf import settings
from django.urls import get_script_prefix, get_urlconf, reverse

# The layout's links (templates/base.html) and the section each marks as the current page, by the
# name of the URL being served: reversed once per process rather than nine times on every page,
# since they do not change while the process runs.
NAV = {
    "dashboard": ("dashboard",),
    "ticket-list": ("ticket-",),
    "maintenance-list": ("maintenance-list",),
    "claim-list": ("claim-", "contract-uptime"),
    "contract-list": ("contract-detail", "contract-list"),
    "people": ("people",),
    "account": ("account", "notification-preferences"),
    "webhook-list": ("webhook-",),  # customer admins only (templates/base.html)
}
LINKS = (*NAV, "logout", "status")


@lru_cache(maxsize=8)
def nav_urls(script_prefix: str, urlconf: str) -> dict[str, str]:
    """{"ticket_list": "/tickets/", ...}: the names as a template can spell them. Kept per script
    prefix and URLconf, what reverse() depends on besides the name."""
    return {name.replace("-", "_"): reverse(name, urlconf=urlconf) for name in LINKS}


def nav_section(url_name: str | None) -> str | None:
    """The NAV link that is the current page ("claim-" marks every claim-* page)."""
    for link, marks in NAV.items():
        if url_name and any(url_name == m or (m.endswith("-") and url_name.startswith(m)) for m in marks):
            return link
    return None


def portal(request):
    user = getattr(request, "user", None)
    organisation = getattr(user, "organisation", None) if getattr(user, "is_authenticated", False) else None
    match = getattr(request, "resolver_match", None)
    return {
        "current_organisation": organisation,
        "nav": nav_urls(get_script_prefix(), get_urlconf() or settings.ROOT_URLCONF),
        "nav_current": nav_section(match.url_name if match else None),
    }
