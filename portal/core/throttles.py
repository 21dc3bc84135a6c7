from rest_framework.throttling import UserRateThrottle

from portal.core.client_ip import client_ip


class WriteRateThrottle(UserRateThrottle):
    """Per-user (per address when anonymous) limit on writes; reads are not throttled."""

    scope = "writes"

    def allow_request(self, request, view):
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return True
        return super().allow_request(request, view)

    def get_ident(self, request):
        # The client behind the trusted proxies (DRF's own reading trusts the whole header unless told).
        return client_ip(request) or super().get_ident(request)
