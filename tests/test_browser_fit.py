"""The staff side fits the screen, proven in a real browser (Playwright on Debian's Chromium).

- The queue at 1280 px shows every column without scrolling sideways, the deadline, level and
  assignee among them, and cuts long subjects to two lines with the whole text on hover; at 1024 px
  its filters move above the list, in a box that scrolls, and the same columns stay in view, the
  first tickets too on a 1024 x 768 screen.
- Every list and form of the admin (each registered model's changelist and its last object's page,
  or its add form) and the staff pages, on the demo data, are at most the screen's width at 1280 px:
  neither the page nor a list inside it scrolls sideways.

The live server runs on the real clock, so the data is built relative to timezone.now()."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib import admin
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from contracts.incidents.services import incident_open
from contracts.maintenance.services import window_publish
from contracts.models import SLA, Contract
from contracts.outages.services import outage_record
from contracts.services import sla_version_draft
from portal.models import User
from portal.site.demo import DEMO_PASSWORD, seed_demo
from tickets.models import Ticket
from tickets.services import ticket_assign, ticket_open, ticket_reply

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LONG = "Backups of the finance file server have failed every night since the storage migration last weekend"
# How wide the page is, and any list whose table scrolls inside its box.
WIDTHS = """() => [document.documentElement.scrollWidth, innerWidth,
  [...document.querySelectorAll('.results')].filter(e => e.scrollWidth > e.clientWidth + 1).length]"""


@pytest.fixture
def demo():
    """The demo data with a day's work on it: tickets in every state, an outage with its incident, a
    maintenance window and a draft version of the SLA terms."""
    seed_demo()
    now = timezone.now()
    ada, sam = User.objects.get(email="admin@vendor.example"), User.objects.get(email="sam@vendor.example")
    alice, charlie = User.objects.get(email="alice@acme.example"), User.objects.get(email="charlie@globex.example")
    acme, globex = Contract.objects.get(reference="KAL-0001"), Contract.objects.get(reference="KLA-0001")
    backup, assistant = acme.services.get(), globex.services.get()
    for i, (priority, subject) in enumerate([("P1", LONG), ("P2", "Restore stuck"), ("P3", "Agent offline")]):
        ticket = ticket_open(
            user=alice, contract=acme, service=backup, priority=priority, subject=subject, description="Details.",
            now=now - timedelta(minutes=20 + 60 * i),
        )  # fmt: skip
        ticket_assign(ticket=ticket, actor=sam, assignee=sam)
    waiting = ticket_open(
        user=charlie, contract=globex, service=assistant, priority=None, subject="Answers in English",
        description="To Swedish questions.", now=now - timedelta(hours=3),
    )  # fmt: skip
    ticket_reply(ticket=waiting, author=sam, body="Which questions?", status=Ticket.Status.WAITING)
    outage = outage_record(
        actor=ada, title="Storage down", services=[backup], starts_at=now - timedelta(days=3),
        ends_at=now - timedelta(days=3, hours=-1),
    )  # fmt: skip
    incident_open(outage=outage, title="Backups delayed", status="investigating", body="Looking.", actor=ada)
    window_publish(
        title="Disk swap", description="New disks.", services=[backup, assistant], actor=ada,
        starts_at=now + timedelta(days=5), ends_at=now + timedelta(days=5, hours=2),
    )  # fmt: skip
    sla = SLA.objects.get(template_key="kaluari-cloud-backup")
    sla_version_draft(sla=sla, effective_on=(now + timedelta(days=60)).date().replace(day=1), actor=ada)
    return {"ada": ada, "sam": sam}


def staff_urls(user) -> list[str]:
    """Every list of the admin registry, its last object's page (else its add form, where this user
    may add), and the staff pages of our own."""
    request = RequestFactory().get("/admin/")
    request.user = user
    urls = [reverse("admin:index"), reverse("admin:staff_dashboard"), reverse("admin:compliance"),
            reverse("admin:staff_otp"), reverse("admin:tickets_ticket_file")]  # fmt: skip
    for model, model_admin in sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label):
        name = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        urls.append(reverse(f"{name}_changelist"))
        first = model_admin.get_queryset(request).order_by("-pk").first()
        if first is not None:
            urls.append(reverse(f"{name}_change", args=[first.pk]))
        elif model_admin.has_add_permission(request):  # the same form, empty
            urls.append(reverse(f"{name}_add"))
    return urls


def test_the_queue_shows_what_matters_at_1280_and_1024_px(logged_in_page, screenshot, demo):
    page = logged_in_page(demo["sam"], password=DEMO_PASSWORD)
    for width in (1280, 1024):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(reverse("admin:tickets_ticket_changelist"))
        screenshot(page, f"fit-queue-{width}")
        headers = page.locator("#result_list thead th")
        for column in ("Next deadline", "Level", "Assignee"):
            box = headers.filter(has_text=column).bounding_box()
            assert box is not None and box["x"] + box["width"] <= width, (width, column)
        assert page.evaluate(WIDTHS) == [width, width, 0], width
        # A long subject takes two lines at most (a row's height anyway: the deadline's two), cut,
        # with its whole text on hover.
        subject = page.locator("#result_list td.field-subject_line .cut").filter(has_text="Backups of the")
        assert subject.get_attribute("title") == LONG
        assert subject.evaluate("e => e.scrollHeight > e.clientHeight")  # cut with an ellipsis
        line = float(subject.evaluate("e => getComputedStyle(e).lineHeight").removesuffix("px"))
        assert subject.bounding_box()["height"] <= 2 * line + 1  # two lines
        deadline = subject.locator("xpath=ancestor::tr").locator("td.field-deadline")
        content = deadline.evaluate("e => { const r = document.createRange(); r.selectNodeContents(e); "
                                    "return r.getBoundingClientRect().height; }")  # fmt: skip
        assert subject.bounding_box()["height"] <= content + 1  # the row is no taller than its deadline makes it
    # At 1024 px the filters sit above the list; on a 1024 x 768 screen the first tickets are in
    # view without scrolling (the filters scroll in their box: whole, they pushed the list below it).
    assert page.locator("#changelist-filter").bounding_box()["y"] < page.locator("#result_list").bounding_box()["y"]
    page.set_viewport_size({"width": 1024, "height": 768})
    page.goto(reverse("admin:tickets_ticket_changelist"))
    screenshot(page, "fit-queue-1024x768")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 4 and rows.nth(1).bounding_box()["y"] + rows.nth(1).bounding_box()["height"] <= 768
    panel = page.locator("#changelist-filter")
    assert panel.evaluate("e => e.scrollHeight > e.clientHeight && getComputedStyle(e).overflowY == 'auto'")
    panel.get_by_role("link", name="Resolved, not rated").scroll_into_view_if_needed()  # every choice reachable
    assert panel.get_by_role("link", name="Resolved, not rated").is_visible()


def test_every_staff_page_fits_a_1280_px_screen(logged_in_page, screenshot, demo):
    page = logged_in_page(demo["ada"], password=DEMO_PASSWORD)
    wide = []
    for url in staff_urls(demo["ada"]):
        response = page.goto(url)
        assert response.status == 200, url
        page_width, screen, scrolling_lists = page.evaluate(WIDTHS)
        if page_width > screen or scrolling_lists:
            wide.append(f"{url}: {page_width} px, {scrolling_lists} list(s) scrolling")
            screenshot(page, "fit-wide-" + url.strip("/").replace("/", "-"))
    assert not wide, "wider than a 1280-px screen:\n" + "\n".join(wide)
    page.goto(reverse("admin:contracts_slaversion_change", args=[SLA.objects.get(template_key="kaluari-cloud-backup")
                                                                  .versions.get(published_at=None).pk]))  # fmt: skip
    screenshot(page, "fit-sla-version-draft")
