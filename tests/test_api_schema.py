"""The OpenAPI schema (drf-spectacular) and the Swagger UI page: the schema generates without a
warning and names every ticket path; the docs page loads nothing from another host."""

import re

import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command

pytestmark = pytest.mark.django_db

TICKET_PATHS = {
    "/api/v1/tickets/": {"get", "post"},
    "/api/v1/tickets/{id}/": {"get", "patch"},
    "/api/v1/tickets/{id}/replies/": {"get", "post"},
    "/api/v1/tickets/{id}/attachments/": {"get", "post"},
    "/api/v1/tickets/{id}/escalate/": {"post"},
}


def test_the_schema_names_every_ticket_path_and_operation(client):
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert {p: set(paths[p]) - {"parameters"} for p in TICKET_PATHS if p in paths} == TICKET_PATHS
    create = paths["/api/v1/tickets/"]["post"]
    assert set(create["responses"]) == {"201", "400", "401", "403"}  # 403: not a support contact
    assert set(paths["/api/v1/tickets/{id}/escalate/"]["post"]["responses"]) == {"201", "400", "401", "404"}
    upload = paths["/api/v1/tickets/{id}/attachments/"]["post"]["requestBody"]["content"]
    assert list(upload) == ["multipart/form-data"]


def test_the_schema_generates_without_warnings(tmp_path):
    # The same check as `manage.py spectacular --validate --fail-on-warn`: a warning fails the test.
    call_command("spectacular", validate=True, fail_on_warn=True, file=str(tmp_path / "schema.yml"))
    assert "/api/v1/tickets/{id}/escalate/" in (tmp_path / "schema.yml").read_text()


def test_the_docs_page_loads_only_local_static_files(client, settings):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert re.findall(r"https?://", html) == []
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets  # the page does load its script and styles...
    for asset in assets:
        if asset == "/api/docs/?script=":
            # The initialising script, served by the same view so that no inline script is needed
            # (Content-Security-Policy: script-src 'self').
            script = client.get(asset)
            assert script.status_code == 200 and "SwaggerUIBundle" in script.content.decode()
            continue
        # ...from our own static files, which exist.
        assert asset.startswith(settings.STATIC_URL), asset
        assert finders.find(asset.removeprefix(settings.STATIC_URL)), asset
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert "<script>" not in html  # no inline script
