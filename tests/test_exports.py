"""The CSV exports, on their bytes: every cell quoted (a spreadsheet that splits on `;`, as many
locales' do, took `Globex;=1+1` as two cells, the second a formula), the formula guard kept (a cell
that starts with = + - @ tab or CR gets a leading '), and a UTF-8 BOM when asked for (`?bom=1`, or
the CSV_UTF8_BOM setting) for Excel, which reads a file without one in the machine's code page."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.urls import reverse

from credits import exports
from credits.closing import close_month

from .factories import ContractFactory, OrganisationFactory, ServiceFactory, UserFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)
BOM = b"\xef\xbb\xbf"
COMPLIANCE = reverse("admin:compliance_export")
MONTHS = reverse("admin:credits_monthlyuptime_export")


@pytest.fixture(autouse=True)
def _frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def staff_client(client, ayo):
    client.force_login(ayo)
    return client


@pytest.fixture
def globex_semicolon(db):
    org = OrganisationFactory(name="Globex;=1+1", slug="globex-semicolon")
    user = UserFactory(email="eve@globex.example", organisation=org)
    return ContractFactory(
        organisation=org, reference="GLX-0001", name="Åkerlund & Söner, Malmö", contacts=[user],
        services=[ServiceFactory(name="Cold Archive", slug="cold-archive")],
    )  # fmt: skip


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_every_cell_is_quoted_and_formulas_are_guarded():
    rows = [["Globex;=1+1", "=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx", 'say "hi"', None, True, 7, "plain"]]
    response = exports.csv_response("test", [f"c{i}" for i in range(12)], rows, bom=False)
    assert body(response) == (
        b'"c0","c1","c2","c3","c4","c5","c6","c7","c8","c9","c10","c11"\r\n'
        b'"Globex;=1+1","\'=1+1","\'+1","\'-1","\'@SUM(A1)","\'\tx","\'\rx","say ""hi""","","yes","7","plain"\r\n'
    )


def test_a_bom_only_when_asked_for(settings):
    def first_bytes(**kwargs) -> bytes:
        return body(exports.csv_response("test", ["name"], [["Åsa"]], **kwargs))

    assert first_bytes(bom=True) == BOM + '"name"\r\n"Åsa"\r\n'.encode()
    assert first_bytes(bom=False) == '"name"\r\n"Åsa"\r\n'.encode()
    assert first_bytes() == '"name"\r\n"Åsa"\r\n'.encode()  # off by default
    settings.CSV_UTF8_BOM = True
    assert first_bytes() == BOM + '"name"\r\n"Åsa"\r\n'.encode()
    assert first_bytes(bom=False) == '"name"\r\n"Åsa"\r\n'.encode()


def test_the_admins_export_quotes_a_name_with_a_semicolon(staff_client, globex_semicolon, settings):
    close_month(month=datetime(2026, 10, 1).date(), now=NOW, contract_ids=[globex_semicolon.pk])
    raw = body(staff_client.get(MONTHS))
    assert not raw.startswith(BOM)
    header, line, end = raw.split(b"\r\n")
    assert header.startswith(b'"organisation","contract_reference","contract_name",') and end == b""
    assert line.startswith('"Globex;=1+1","GLX-0001","Åkerlund & Söner, Malmö","2026-10",'.encode())
    assert line.startswith(b'"') and line.endswith(b'"') and line.count(b'","') == header.count(b'","')
    settings.CSV_UTF8_BOM = True  # the setting reaches the admin's exports
    assert body(staff_client.get(MONTHS)).startswith(BOM + b'"organisation",')


@pytest.mark.parametrize(("query", "bom"), [({}, False), ({"bom": "1"}, True), ({"bom": "0"}, False)])
def test_the_compliance_export_takes_a_bom_on_request(staff_client, globex_semicolon, query, bom):
    raw = body(staff_client.get(COMPLIANCE, {"month": "2026-10", **query}))
    assert raw.startswith(BOM) is bom
    lines = raw.removeprefix(BOM).split(b"\r\n")
    assert lines[0].startswith(b'"organisation","contract_reference",')
    assert lines[1].startswith('"Globex;=1+1","GLX-0001","Åkerlund & Söner, Malmö",'.encode())


def test_bom_0_leaves_it_out_when_the_setting_puts_it_in(staff_client, globex_semicolon, settings):
    settings.CSV_UTF8_BOM = True
    assert body(staff_client.get(COMPLIANCE, {"month": "2026-10"})).startswith(BOM + b'"organisation"')
    assert body(staff_client.get(COMPLIANCE, {"month": "2026-10", "bom": "0"})).startswith(b'"organisation"')
