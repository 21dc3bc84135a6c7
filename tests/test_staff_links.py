"""Staff pages link only where their reader may go, and every link works: found by crawling every
link of the demo as each staff role. The ticket page's History button was a 500 (the queue's
counting order given to the admin log's paginator); "Created by" and "Assignee" linked a support
agent to the people admin (403), as every read-only relation linked whoever read it; the compliance
report linked a lead to closed months and claims she may not open; a customer's page offered an
account manager the superuser's password form; "Clear all filters" after a date link was a 400; and
the outbox showed every staff member the customer's one-click unsubscribe link, which acts for them."""

import re
from datetime import UTC, date, datetime
from html import unescape
from urllib.parse import urljoin

import pytest
import time_machine
from django.urls import reverse

from contracts.models import Outage
from credits.closing import close_month
from portal.core.delivery import outbox_send_key
from portal.models import OutboxMessage
from tickets.services import ticket_assign, ticket_open, ticket_reply

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)
OCT = date(2026, 10, 1)


def admin_links(html: str, base: str = "/admin/") -> list[str]:
    """Every admin link of the page, relative ones ("../password/") resolved against its URL."""
    hrefs = {urljoin(base, unescape(h)) for h in re.findall(r'href="([^"#]+)"', html)}
    return sorted(h for h in hrefs if h.startswith("/admin/") and "logout" not in h)


@pytest.fixture
def ticket(acme_contract, alice, sam):
    t = ticket_open(
        user=alice, contract=acme_contract, service=acme_contract.services.get(), priority="P3",
        subject="Backups fail", description="Nothing backs up since last night.",
    )  # fmt: skip
    ticket_assign(ticket=t, actor=sam, assignee=sam)
    return t


def test_the_history_button_of_a_ticket_opens_its_history(client, sam, ticket):
    """The ticket page's History button opens its history (it was a 500: the queue's paginator, which
    counts in the queue's order, next_deadline, paged the admin log too)."""
    client.force_login(sam)
    page = client.get(reverse("admin:tickets_ticket_change", args=[ticket.pk]))
    history = reverse("admin:tickets_ticket_history", args=[ticket.pk])
    assert history in page.content.decode()  # the button is there
    assert client.get(history).status_code == 200


def test_a_support_agent_is_not_offered_links_he_may_not_open_on_a_ticket(client, sam, ticket):
    """'Created by' and 'Assignee' name the people; a support agent may not open the people admin."""
    client.force_login(sam)
    page = client.get(reverse("admin:tickets_ticket_change", args=[ticket.pk]))
    links = [u for u in admin_links(page.content.decode()) if "/history/" not in u]  # that one: the test above
    refused = [u for u in links if client.get(u).status_code == 403]
    assert refused == []
    assert "Alice Achieng &lt;alice@acme.example&gt;" in page.content.decode()  # named, not linked


def test_the_compliance_report_links_only_to_pages_the_lead_may_open(client, lena, ayo, acme_contract):
    """The compliance report is a support lead's; its links to a closed month (and to a claim) show
    only to staff who may open them."""
    with time_machine.travel(NOW, tick=False):
        outage = Outage.objects.create(
            title="Storage down", starts_at=datetime(2026, 10, 10, 2, tzinfo=UTC),
            ends_at=datetime(2026, 10, 10, 4, tzinfo=UTC),
        )  # fmt: skip
        outage.services.set(acme_contract.services.all())
        close_month(month=OCT, now=NOW, contract_ids=[acme_contract.pk])
        client.force_login(lena)
        page = client.get(reverse("admin:compliance_contract", args=[acme_contract.pk]) + "?month=2026-10")
        assert page.status_code == 200
        links = admin_links(page.content.decode())
        assert not any("monthlyuptime" in u for u in links)
        refused = [u for u in links if client.get(u).status_code in (403, 500)]
        assert refused == []
        client.force_login(ayo)  # who may open closed months has the link
        page = client.get(reverse("admin:compliance_contract", args=[acme_contract.pk]) + "?month=2026-10")
        assert any("monthlyuptime" in u for u in admin_links(page.content.decode()))


def test_an_account_manager_is_not_offered_the_password_form_he_may_not_open(client, ayo, alice):
    """A customer user's page offers Ayo no 'Reset password' button: its page is a superuser's."""
    client.force_login(ayo)
    url = reverse("admin:portal_user_change", args=[alice.pk])
    page = client.get(url)
    assert page.status_code == 200
    refused = [u for u in admin_links(page.content.decode(), url) if client.get(u).status_code == 403]
    assert refused == []


@pytest.mark.parametrize(
    ("changelist", "filters"),
    [
        ("admin:tickets_inboundmessage_changelist", "outcome__exact=held&received_at__year=2026"),
        ("admin:contracts_maintenancewindow_changelist", "status__exact=scheduled&starts_at__year=2026"),
    ],
)
def test_clear_all_filters_after_a_date_drill_down_is_no_400(client, ada, changelist, filters):
    """The held emails (the dashboard's link) narrowed to a year by the date links above the list, then
    'Clear all filters': Django's link kept the bounds it made of the year (received_at__gte, __lt),
    which the list refused with a 400."""
    client.force_login(ada)
    page = client.get(reverse(changelist) + "?" + filters)
    assert page.status_code == 200
    clear = re.search(r'<a href="([^"]*)">\s*&#10006; Clear all filters', page.content.decode())
    assert clear, "no Clear all filters link"
    response = client.get(reverse(changelist) + unescape(clear.group(1)))
    assert response.status_code == 200, re.findall(r"This list has no filter[^<]*", response.content.decode())


def test_the_outbox_withholds_the_customers_unsubscribe_link(client, acme_contract, alice, sam):
    """Every optional email carries its reader's one-click unsubscribe link (a signed token that turns
    their email choice off, no sign-in): the outbox shows staff the email without the token."""
    ticket = ticket_open(
        user=alice, contract=acme_contract, service=acme_contract.services.get(), priority="P3",
        subject="Backups fail", description="Nothing backs up.",
    )  # fmt: skip
    ticket_reply(ticket=ticket, author=sam, body="Which agent version?")
    row = OutboxMessage.objects.get(template="ticket_reply", to=alice.email)
    outbox_send_key(key=row.key)  # sent (the test settings' locmem backend), as the worker sends it
    row.refresh_from_db()
    assert "/email/unsubscribe/" in row.body_text  # the email itself carries it, rightly
    client.force_login(sam)
    page = client.get(reverse("admin:portal_outboxmessage_change", args=[row.pk]))
    assert page.status_code == 200
    token = re.search(r"/email/unsubscribe/([^/]+)/", row.body_text)[1]
    html = page.content.decode()
    assert token not in html
    assert html.count("/email/unsubscribe/(withheld)/") >= 4  # the context, the text, the HTML, the headers


def test_the_outbox_shows_no_token_of_a_link_that_acts_for_its_reader():
    from portal.core.unsubscribe import without_link_tokens

    text = (
        "https://p.example/email/unsubscribe/eyJ1IjoxfQ:1vT:abc-_/ "
        "https://p.example/status/subscriptions/confirm/eyJz:1v:x/ "
        "https://p.example/status/subscriptions/eyJz:1v:y/ https://p.example/tickets/rate/eyJ0:1v:z/"
    )
    assert without_link_tokens(text) == (
        "https://p.example/email/unsubscribe/(withheld)/ "
        "https://p.example/status/subscriptions/confirm/(withheld)/ "
        "https://p.example/status/subscriptions/(withheld)/ https://p.example/tickets/rate/(withheld)/"
    )


def test_the_outbox_withholds_a_subscribers_manage_link(client, sam, backup):
    """A status subscriber's email carries their page's link (it unsubscribes them, no sign-in)."""
    from django.utils import timezone

    from contracts.models import StatusSubscriber
    from contracts.subscribers.emails import subscriber_emails
    from contracts.subscribers.services import manage_token
    from portal.core.form_limits import address_key
    from portal.core.outbox import outbox_enqueue

    now = timezone.now()
    eve = StatusSubscriber.objects.create(
        email="eve@example.org", address_key=address_key("eve@example.org"), created_at=now, confirmed_at=now
    )
    # Built as the maintenance sender builds it (every subscriber email carries the link).
    [email] = subscriber_emails(subscribers=[eve], key="maintenance:1", template="status_maintenance", context={})
    assert outbox_enqueue(email=email)
    row = OutboxMessage.objects.get(to="eve@example.org")
    token = manage_token(eve)
    assert token in str(row.context) or token in str(row.headers)
    client.force_login(sam)
    page = client.get(reverse("admin:portal_outboxmessage_change", args=[row.pk]))
    assert page.status_code == 200
    assert token not in page.content.decode()
