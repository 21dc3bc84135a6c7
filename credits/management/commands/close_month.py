from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from tqdm import tqdm

from contracts.models import Contract
from credits.closing import close_due, close_month
from portal.domain.dates import month_from_text


class Command(BaseCommand):
    help = (
        "Close a month by hand: uptime, tier and credit per contract. Without --month, the hourly beat task's "
        "closing (not its claim reminders): every ended month not closed yet (the last 12), and every reopened one."
    )

    def add_arguments(self, parser):
        parser.add_argument("--month", help="YYYY-MM, e.g. 2026-10")
        parser.add_argument("--contract", type=int, action="append", help="only this contract id (repeatable)")

    def handle(self, *args, month=None, contract=None, **options):
        if month is None:
            if contract:
                raise CommandError("--contract needs --month.")
            closed = close_due(now=timezone.now())
            self.stdout.write(self.style.SUCCESS(f"{closed} contract-month(s) closed."))
            return
        try:
            first = month_from_text(month)  # the API's rule: years whose month bounds exist everywhere
        except ValueError:
            raise CommandError("--month must be YYYY-MM between 1970-01 and 9998-12, e.g. 2026-10") from None
        total = Contract.objects.filter(pk__in=contract).count() if contract else Contract.objects.count()
        with tqdm(total=total, unit="contract", disable=options["verbosity"] == 0) as bar:
            closed = close_month(month=first, now=timezone.now(), contract_ids=contract, progress=bar.update)
        self.stdout.write(self.style.SUCCESS(f"{first:%Y-%m}: {closed} contract-month(s) closed."))
