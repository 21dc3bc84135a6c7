from django.core.management.base import BaseCommand

from portal.site.demo import ADMIN, DEMO_PASSWORD, ORGANISATIONS, STAFF, seed_demo
from portal.site.demo_activity import seed_demo_activity


class Command(BaseCommand):
    help = (
        "Load the demo data (idempotent): vendor staff, two customers on the two SLA templates, and a week of "
        "their tickets (filed once)."
    )

    def handle(self, *args, **options):
        seed_demo()
        try:
            filed = seed_demo_activity()
        except Exception as exc:  # noqa: BLE001 - the week is a nicety: the portal runs without it (nothing was kept)
            filed = []
            self.stderr.write(f"The demo week was not filed ({type(exc).__name__}: {exc}); the portal runs without it.")
        self.stdout.write(self.style.SUCCESS(f"Demo data ready. Every demo user's password: {DEMO_PASSWORD}"))
        for org in ORGANISATIONS:
            for email, _name, role in org["users"]:
                self.stdout.write(f"  {email:28} {org['name']} ({role.label})")
        for email, _name, role, _phone in STAFF:
            self.stdout.write(f"  {email:28} staff: {role.label}")
        self.stdout.write(f"  {ADMIN[0]:28} staff: superuser")
        if filed:
            self.stdout.write(f"Filed {len(filed)} demo tickets, with their replies, escalation and rating.")
