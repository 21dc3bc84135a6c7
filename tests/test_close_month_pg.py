"""close_month at 10,000 contracts on PostgreSQL: queries bounded by chunks, not contracts."""

import math
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection

from contracts.models import SLA, Contract, Outage
from credits import closing
from credits.models import MonthlyUptime

from .factories import ServiceFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]
NBO = ZoneInfo("Africa/Nairobi")


class Count:
    def __init__(self):
        self.n = 0

    def __call__(self, execute, sql, params, many, context):
        self.n += 1
        return execute(sql, params, many, context)


def test_ten_thousand_contracts_close_in_queries_bounded_by_chunks(acme):
    services = [ServiceFactory(name=f"Svc {i}", slug=f"svc-{i}") for i in range(20)]
    sla = SLA.objects.get(template_key="kaluari-cloud-backup")
    contracts = Contract.objects.bulk_create(
        Contract(organisation=acme, reference=f"B-{i:05d}", name=f"C{i}", sla=sla, starts_on=date(2026, 1, 1),
                 monthly_invoice_amount=1000 + i, currency="KES")
        for i in range(10_000)
    )  # fmt: skip
    Through = Contract.services.through
    Through.objects.bulk_create(
        Through(contract_id=c.pk, service_id=services[i % 20].pk) for i, c in enumerate(contracts)
    )
    outages = []
    for i, s in enumerate(services):
        start = datetime(2026, 10, 5, tzinfo=NBO)
        o = Outage.objects.create(title=f"O{i}", starts_at=start, ends_at=start + timedelta(minutes=4 + i))
        o.services.set([s])
        outages.append(o)
    count = Count()
    with connection.execute_wrapper(count):
        closed = closing.close_month(month=date(2026, 10, 1), now=datetime(2026, 11, 2, tzinfo=NBO))
    assert closed == 10_000 == MonthlyUptime.objects.count()
    chunks = math.ceil(10_000 / closing.CHUNK)
    # A handful per chunk of 500: 20 chunks, not 10,000 contracts. Each chunk takes the month's lock
    # and reads its outages and windows again under it (credits.closing._close_chunk).
    assert count.n <= 10 + 11 * chunks, count.n
    # Each contract's credit follows its own invoice (the shared uptime is computed once).
    m = MonthlyUptime.objects.select_related("contract").get(contract__reference="B-00000")
    assert m.down_minutes == 4 and m.credit_amount is None  # 4 minutes down: above the guarantee
    # The compact breakdown: the outage's id, its minutes, not excluded (read back from jsonb as written).
    assert m.breakdown == {"outages": f"{outages[0].pk},4,0", "maintenance": ""}
    assert MonthlyUptime.objects.filter(breakdown__outages=f"{outages[19].pk},23,0").count() == 500


def test_the_migration_converts_breakdowns_both_ways_on_postgresql(acme_contract):
    import importlib

    from django.apps import apps

    migration = importlib.import_module("credits.migrations.0002_compact_breakdown")
    start = datetime(2026, 10, 5, tzinfo=NBO)
    o = Outage.objects.create(title="Storage down", starts_at=start, ends_at=start + timedelta(minutes=30))
    o.services.set(acme_contract.services.all())
    closing.close_month(month=date(2026, 10, 1), now=datetime(2026, 11, 2, tzinfo=NBO))
    compact = MonthlyUptime.objects.get().breakdown
    migration.verbose(apps, None)
    (line,) = MonthlyUptime.objects.get().breakdown
    assert (line["title"], line["minutes"], line["reason"]) == ("Storage down", 30, "Counted as downtime")
    migration.compact(apps, None)
    assert MonthlyUptime.objects.get().breakdown == compact == {"outages": f"{o.pk},30,0", "maintenance": ""}
