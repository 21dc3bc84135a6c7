# Placeholder views: replaced by the customer ticket pages.
from django.http import Http404


def _missing(request, *args, **kwargs):
    raise Http404


ticket_list = ticket_new = ticket_detail = ticket_reply = ticket_escalate = ticket_status = attachment_download = _missing
