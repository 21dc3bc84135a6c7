# Placeholder views: replaced by the customer uptime and claim pages.
from django.http import Http404


def _missing(request, *args, **kwargs):
    raise Http404


claim_list = claim_new = claim_detail = _missing
