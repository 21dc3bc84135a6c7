"""The API's own file downloads: a ticket's file and a claim's evidence, fetched at their
`download_url` with an API token (the portal's links take a login session only), scoped as the
portal's downloads are (another organisation's file is a 404, like one that never existed)."""

import base64
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from contracts.models import Outage
from credits.closing import close_month
from portal.core.api_tokens import token_create
from tickets.services import ticket_open

NBO = ZoneInfo("Africa/Nairobi")
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(datetime(2026, 11, 3, 10, 0, tzinfo=NBO), tick=False):
        yield


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def token_client(user) -> APIClient:
    _, secret = token_create(user=user, ttl=timedelta(days=1))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    return client


def upload(client, url: str):
    response = client.post(url, {"file": SimpleUploadedFile("screen.png", PNG)}, format="multipart")
    assert response.status_code == 201, response.content
    return response.json()


def assert_downloads(client, url: str) -> None:
    response = client.get(url, HTTP_ACCEPT="image/png")  # an Accept of the file's type is no 406
    assert response.status_code == 200, response.content
    assert b"".join(response.streaming_content) == PNG
    assert response["Content-Type"] == "image/png"
    assert response["Content-Disposition"] == 'attachment; filename="screen.png"'


def test_a_tickets_file_downloads_at_its_download_url_with_a_token(acme_contract, alice, bob, charlie):
    ticket = ticket_open(
        user=alice, contract=acme_contract, service=acme_contract.services.get(), priority="P2",
        subject="Backups fail", description="Nothing backs up.",
    )  # fmt: skip
    client = token_client(alice)
    posted = upload(client, f"/api/v1/tickets/{ticket.pk}/attachments/")
    url = posted["download_url"]
    assert url == f"http://testserver/api/v1/tickets/{ticket.pk}/attachments/{posted['id']}/download/"
    assert client.get(f"/api/v1/tickets/{ticket.pk}/attachments/").json()["results"][0]["download_url"] == url
    assert_downloads(client, url)
    assert_downloads(token_client(bob), url)  # anyone of the organisation
    # Another organisation's file is a 404, as is a file under another ticket's id; anonymous is a 401.
    assert token_client(charlie).get(url).status_code == 404
    assert client.get(url.replace(f"/tickets/{ticket.pk}/", f"/tickets/{ticket.pk + 1}/")).status_code == 404
    assert APIClient().get(url).status_code == 401
    for huge in (f"/tickets/{ticket.pk}/attachments/{2**64}/", f"/tickets/{2**64}/attachments/{posted['id']}/"):
        assert client.get(f"/api/v1{huge}download/").status_code == 404  # never a 500


def test_a_claims_evidence_downloads_at_its_download_url_with_a_token(acme_contract, alice, charlie):
    outage = Outage.objects.create(
        title="Storage down", starts_at=datetime(2026, 10, 10, 2, 0, tzinfo=NBO),
        ends_at=datetime(2026, 10, 10, 10, 20, tzinfo=NBO),
    )  # fmt: skip
    outage.services.set(acme_contract.services.all())
    close_month(month=date(2026, 10, 1), now=datetime(2026, 11, 1, 1, 0, tzinfo=NBO))
    client = token_client(alice)
    claim = client.post("/api/v1/claims/", {"contract": acme_contract.pk, "month": "2026-10"}, format="json")
    assert claim.status_code == 201, claim.content
    claim_id = claim.json()["id"]
    posted = upload(client, f"/api/v1/claims/{claim_id}/attachments/")
    url = posted["download_url"]
    assert url == f"http://testserver/api/v1/claims/{claim_id}/attachments/{posted['id']}/download/"
    assert client.get(f"/api/v1/claims/{claim_id}/").json()["attachments"][0]["download_url"] == url
    assert_downloads(client, url)
    assert token_client(charlie).get(url).status_code == 404
    assert APIClient().get(url).status_code == 401
    assert client.get(f"/api/v1/claims/{2**64}/attachments/{posted['id']}/download/").status_code == 404
