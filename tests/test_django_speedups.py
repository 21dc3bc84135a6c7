"""portal.core.django_speedups: each hand-written replacement of a Django internal must give Django's
own output, for every kind of input the pages give it."""

from datetime import timedelta

import pytest
import time_machine
from django.contrib.admin.templatetags.admin_list import results

from tickets.models import Ticket
from tickets.services import ticket_assign, ticket_exclude, ticket_set_status
from tickets.sweeps import check_sla_deadlines

from .factories import StaffFactory
from .test_ticket_admin import FRI_1600, QUEUE, at, file

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, sam):
    with time_machine.travel(at(14, 0), tick=False):
        client.force_login(sam)
    return client


def test_the_queue_rows_are_the_markup_django_writes(staff_client, acme_contract, alice, bob, sam):
    """FastRowsChangeList.rows() on the staff queue, cell for cell against Django's results(), for
    every kind of row: open, assigned, waiting, breached, excluded, resolved, a subject that needs
    escaping, an assignee without a name; with filters that the links carry along."""
    lena = StaffFactory(email="lena@vendor.example", name="", staff_role="support_lead")
    file(acme_contract, alice, "P1", subject='Backups "fail" <b>again</b> & again')
    p2 = file(acme_contract, bob, "P2", subject="Agent fails a job")
    p3 = file(acme_contract, alice, "P3", subject="Restore is slow")
    p4 = file(acme_contract, bob, "P4", FRI_1600 - timedelta(hours=2), subject="Old question")
    blank = file(acme_contract, bob, "P3", subject="   ")
    with time_machine.travel(at(16, 5), tick=False):
        ticket_assign(ticket=p2, actor=sam, assignee=sam)
        ticket_assign(ticket=p3, actor=sam, assignee=lena)
        ticket_set_status(ticket=p3, actor=sam, status=Ticket.Status.WAITING)
        ticket_set_status(ticket=p4, actor=sam, status=Ticket.Status.RESOLVED)
        ticket_exclude(ticket=blank, actor=sam, cause="beyond_control", reason="A flood.")
    with time_machine.travel(at(16, 20), tick=False):
        check_sla_deadlines()  # p1's first response is breached
        for query in ({}, {"status": "all"}, {"status": "all", "o": "-7.1", "q": "night"}):
            cl = staff_client.get(QUEUE, query).context["cl"]
            ours = cl.rows()
            assert cl.fast_columns() and all(len(row) == 1 for row in ours)  # the fast path, one string a row
            assert ["".join(row) for row in ours] == ["".join(row) for row in results(cl)], query
    assert len(ours) == 5 and "_changelist_filters=status%3Dall%26o%3D-7.1%26q%3Dnight" in ours[0][0]
    with time_machine.travel(at(16, 20), tick=False):  # what rows() does not know, Django renders
        cl.list_display_links = None
        assert not cl.fast_columns() and [list(r) for r in cl.rows()] == [list(r) for r in results(cl)]


def test_listed_choices_are_the_select_django_writes_from_one_plain_query(sam, monkeypatch):
    """ListedModelChoiceField renders Django's ModelChoiceField's select, its choices read by a plain
    query (QuerySet.iterator() is a server-side cursor on PostgreSQL: four round trips)."""
    from django import forms
    from django.contrib.auth import get_user_model
    from django.db.models.query import QuerySet

    from portal.core.django_speedups import ListedModelChoiceField

    lena = StaffFactory(email="lena@vendor.example", name='Lena "<Lead>"', staff_role="support_lead")
    staff = get_user_model().objects.filter(is_staff=True).order_by("email")

    class Theirs(forms.Form):
        who = forms.ModelChoiceField(queryset=staff, empty_label="— nobody —")

    class Ours(forms.Form):
        who = ListedModelChoiceField(queryset=staff, empty_label="— nobody —")

    django_select = str(Theirs(initial={"who": lena.pk})["who"])
    monkeypatch.setattr(QuerySet, "iterator", lambda *a, **k: pytest.fail("read through a cursor"))
    ours = Ours(initial={"who": lena.pk})
    assert str(ours["who"]) == django_select and "Lena &quot;&lt;Lead&gt;&quot;" in django_select
    assert ours.fields["who"].clean(str(lena.pk)) == lena


def test_the_queue_action_bar_is_the_markup_django_writes(staff_client, acme_contract, alice):
    """templates/admin/tickets/ticket/actions.html writes the action form's select and hidden field
    itself; Django's widgets write the same."""
    from django.template import Context, Template

    file(acme_contract, alice, "P2", subject="Agent fails a job")
    with time_machine.travel(at(16, 5), tick=False):
        response = staff_client.get(QUEUE)
    django_markup = Template(
        "{% for field in action_form %}{% if field.label %}<label>{{ field.label }} {{ field }}</label>"
        "{% else %}{{ field }}{% endif %}{% endfor %}"
    ).render(Context({"action_form": response.context["action_form"]}))
    assert 'value="link_to_incident"' in django_markup and 'class="select-across"' in django_markup
    assert django_markup in response.content.decode()
