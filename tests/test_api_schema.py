"""The OpenAPI schema (drf-spectacular) and the Swagger UI page: the schema generates without a
warning and names every ticket path; every enum is a named component (no inline enum anywhere, in
a property, an `allOf` or a query parameter); it has a `servers` entry and does not list itself;
the errors any operation can answer are documented on every operation they apply to; every list
is paginated, filtered and ordered the same way. The docs page loads nothing from another host.
(tests/test_api_client.py generates a client from it and uses it.)"""

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
    assert set(create["responses"]) == {"201", "400", "401", "403", "409", "413", "415", "429"}
    escalate = paths["/api/v1/tickets/{id}/escalate/"]["post"]
    assert set(escalate["responses"]) == {"201", "400", "401", "403", "404", "413", "415", "429"}
    upload = paths["/api/v1/tickets/{id}/attachments/"]["post"]["requestBody"]["content"]
    assert list(upload) == ["multipart/form-data"]


@pytest.fixture
def schema(client) -> dict:
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def _operations(schema: dict):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                yield path, method, operation


def _inline_enums(node, where: str):
    """Where an enum is written out rather than referenced (components' own enums aside)."""
    if isinstance(node, dict):
        if "enum" in node:
            yield where
        for key, value in node.items():
            yield from _inline_enums(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _inline_enums(value, f"{where}[{i}]")


def test_every_enum_is_a_named_component(schema):
    components = schema["components"]["schemas"]
    enums = {name for name, component in components.items() if "enum" in component}
    assert {
        "TicketStatus", "Priority", "SlaState", "ClaimStatus", "CreditKind", "Cause", "EscalationChannel",
        "MaintenanceImpact", "MaintenanceStatus", "MonthState", "MonthStatus", "BreakdownKind", "TicketOrdering",
    } <= enums  # fmt: skip
    inline = list(_inline_enums(schema["paths"], "paths"))
    for name, component in components.items():
        if name not in enums:
            inline += _inline_enums(component, f"components/{name}")
    assert inline == []
    # The claim's status, an inline allOf around an enum until now (generated clients failed on it).
    assert components["Claim"]["properties"]["status"] == {"$ref": "#/components/schemas/ClaimStatus"}
    # What an allOf still wraps is a reference alone (to carry the property's description).
    wrapped = [
        member
        for component in components.values()
        for prop in component.get("properties", {}).values()
        for member in prop.get("allOf", [])
    ]
    assert wrapped and all(set(member) == {"$ref"} for member in wrapped)


def test_the_schema_has_a_server_and_does_not_list_itself(schema, settings):
    assert schema["servers"] == [{"url": settings.PORTAL_BASE_URL, "description": "This portal"}]
    assert not [path for path in schema["paths"] if not path.startswith("/api/v1/")]


def test_the_errors_any_operation_can_answer_are_documented_on_each(schema):
    missing = []
    for path, method, operation in _operations(schema):
        if operation["security"] == [{"alertmanagerBearer": []}]:
            continue  # the monitoring webhook, not the customers' API (tests/test_alertmanager.py)
        expected = {"401", "403"}
        if "{" in path:
            expected.add("404")
        if "requestBody" in operation:
            expected |= {"413", "415", "429"}
        if absent := expected - set(operation["responses"]):
            missing.append(f"{method.upper()} {path}: {sorted(absent)}")
        for code in expected:
            assert "content" in operation["responses"][code] or code == "400", (path, method, code)
    assert missing == []
    reads = schema["paths"]["/api/v1/contracts/"]["get"]["responses"]
    assert "429" not in reads and "415" not in reads  # reads are not throttled and take no body
    assert "Retry-After" in schema["paths"]["/api/v1/tickets/"]["post"]["responses"]["429"]["description"]


def test_every_list_is_paginated_filtered_and_ordered_alike(schema):
    lists = {
        path: operation for path, method, operation in _operations(schema) if operation["operationId"].endswith("_list")
    }
    assert set(lists) == {
        "/api/v1/contracts/", "/api/v1/services/", "/api/v1/maintenance-windows/", "/api/v1/outages/", "/api/v1/incidents/",
        "/api/v1/months/", "/api/v1/tickets/", "/api/v1/tickets/{id}/replies/", "/api/v1/tickets/{id}/attachments/",
        "/api/v1/claims/",
    }  # fmt: skip
    for path, operation in lists.items():
        parameters = {p["name"]: p for p in operation["parameters"]}
        assert {"limit", "offset", "ordering"} <= set(parameters), path
        assert parameters["ordering"]["schema"]["$ref"].endswith("Ordering"), path
        assert "Default" in parameters["ordering"]["description"], path
        page = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
        assert page.startswith("Paginated"), path
        assert set(schema["components"]["schemas"][page]["properties"]) == {"count", "next", "previous", "results"}
        assert "400" in operation["responses"], path  # a bad filter or ordering is a 400 with messages


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


def test_what_filing_a_ticket_answers_is_documented_as_it_is_sent(schema):
    """The 409 has the `{detail}` body it sends; the 201's headers are named; the key's length is in
    its schema, not only in prose."""
    create = schema["paths"]["/api/v1/tickets/"]["post"]
    conflict = create["responses"]["409"]
    assert conflict["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert set(create["responses"]["201"]["headers"]) == {"Location", "Idempotent-Replayed"}
    [key] = [p for p in create["parameters"] if p["name"] == "Idempotency-Key"]
    assert key["in"] == "header" and key["schema"] == {"type": "string", "minLength": 1, "maxLength": 255}


def test_the_month_pattern_accepts_exactly_the_months_the_server_does(schema):
    from portal.domain.dates import month_from_text

    def accepted(text: str) -> bool:
        try:
            month_from_text(text)
        except ValueError:
            return False
        return True

    parameters = schema["paths"]["/api/v1/contracts/{id}/uptime/"]["get"]["parameters"]
    [month] = [p for p in parameters if p["name"] == "month"]
    pattern = re.compile(month["schema"]["pattern"])
    texts = [f"{year:04d}-{m:02d}" for year in [*range(1960, 2101), *range(8990, 10000)] for m in range(14)]
    assert [t for t in texts if bool(pattern.search(t)) != accepted(t)] == []
    assert pattern.search("2026-10") and not pattern.search("1306-18")


def test_a_file_download_is_documented_as_binary_of_every_type_a_file_may_have(schema):
    from tickets.attachments import STORED_TYPES

    binary = {"schema": {"type": "string", "format": "binary"}}
    for path in (
        "/api/v1/tickets/{id}/attachments/{attachment_id}/download/",
        "/api/v1/claims/{id}/attachments/{attachment_id}/download/",
    ):
        responses = schema["paths"][path]["get"]["responses"]
        assert responses["200"]["content"] == dict.fromkeys(STORED_TYPES, binary)
        assert "text/plain" in STORED_TYPES and "404" in responses
