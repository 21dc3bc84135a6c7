"""A read-only relation on an admin page links to the related object only for staff who may open
it. Django's read-only field links to the related admin page whoever reads it: a support agent saw
"Created by" and "Assignee" link to the people admin, a lead a maintenance window's author, and
each link was a 403. The staff site (portal.site.admin_site) renders each admin page while
`viewing` its request; the link asks the related admin whether this reader may view the object,
and is the object's name alone otherwise."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.contrib.admin.helpers import AdminReadonlyField
from django.http import HttpRequest

_reader: ContextVar[HttpRequest | None] = ContextVar("admin_reader", default=None)
_django_link = AdminReadonlyField.get_admin_url


@contextmanager
def viewing(request: HttpRequest) -> Iterator[None]:
    token = _reader.set(request)
    try:
        yield
    finally:
        _reader.reset(token)


def _link_if_allowed(self: AdminReadonlyField, remote_field, remote_obj) -> str:
    request = _reader.get()
    related = self.model_admin.admin_site._registry.get(remote_field.model)
    if request is not None and (related is None or not related.has_view_permission(request, remote_obj)):
        return str(remote_obj)
    return _django_link(self, remote_field, remote_obj)


AdminReadonlyField.get_admin_url = _link_if_allowed
