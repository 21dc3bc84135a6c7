"""Django's limits on a request's fields, query parameters and files (DATA_UPLOAD_MAX_NUMBER_FIELDS,
DATA_UPLOAD_MAX_NUMBER_FILES) are refused by the customer API as every other bad request is: a JSON
400 saying which limit, never Django's HTML page."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from tickets.models import Attachment
from tickets.services import ticket_open

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def frozen(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    with time_machine.travel(datetime(2026, 11, 3, 10, 0, tzinfo=ZoneInfo("Africa/Nairobi")), tick=False):
        yield


@pytest.fixture
def ticket(acme_contract, alice):
    return ticket_open(
        user=alice, contract=acme_contract, service=acme_contract.services.get(), priority="P2",
        subject="Backups fail", description="Nothing backs up.",
    )  # fmt: skip


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_too_many_query_parameters_is_a_json_400(alice, ticket):
    query = "&".join(f"p{i}=1" for i in range(1001))
    for path in ("/api/v1/tickets/", "/api/v1/outages/", f"/api/v1/tickets/{ticket.pk}/"):
        response = api(alice).get(f"{path}?{query}")
        assert response.status_code == 400, (path, response.content[:200])
        assert response.json() == {"detail": "The request has more than 1000 fields or query parameters."}


def test_too_many_multipart_fields_or_files_is_a_json_400_and_stores_nothing(alice, ticket):
    url = f"/api/v1/tickets/{ticket.pk}/attachments/"
    fields = {f"f{i}": "x" for i in range(1001)}
    response = api(alice).post(url, fields, format="multipart")
    assert response.status_code == 400
    assert response.json() == {"detail": "The request has more than 1000 fields or query parameters."}
    files = {f"file{i}": SimpleUploadedFile(f"{i}.txt", b"lines\n") for i in range(101)}
    response = api(alice).post(url, files, format="multipart")
    assert response.status_code == 400
    assert response.json() == {"detail": "The request has more than 100 files."}
    assert not Attachment.objects.exists()
