"""The staff queue's rows (tickets.admin.queue.TicketChangeList.rows), in Django's results template."""

from django import template
from django.contrib.admin.templatetags.admin_list import result_headers, result_hidden_fields
from django.contrib.admin.templatetags.base import InclusionAdminNode

register = template.Library()


def ticket_result_list(cl):
    """Django's result_list, with the rows from cl.rows()."""
    headers = list(result_headers(cl))
    return {
        "cl": cl,
        "result_hidden_fields": list(result_hidden_fields(cl)),
        "result_headers": headers,
        "num_sorted_fields": sum(1 for h in headers if h["sortable"] and h["sorted"]),
        "results": cl.rows(),
    }


@register.tag(name="ticket_result_list")
def ticket_result_list_tag(parser, token):
    return InclusionAdminNode(
        parser, token, func=ticket_result_list, template_name="change_list_results.html", takes_context=False
    )
