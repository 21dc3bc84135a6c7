from django.core.management.base import BaseCommand

from tickets.recompute import tickets_active_ids, tickets_recompute


class Command(BaseCommand):
    help = (
        "Derive the clock columns of every open ticket again (what the recompute task does after an edit), "
        "e.g. after changing SLA_AT_RISK_SHARE. Recorded breaches stand; running it twice changes nothing."
    )

    def handle(self, *args, **options):
        done = tickets_recompute(tickets_active_ids())
        self.stdout.write(self.style.SUCCESS(f"{done} open ticket(s) recomputed."))
