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
        filed = seed_demo_activity()
        self.stdout.write(self.style.SUCCESS(f"Demo data ready. Every demo user's password: {DEMO_PASSWORD}"))
        for org in ORGANISATIONS:
            for email, _name, role in org["users"]:
                self.stdout.write(f"  {email:28} {org['name']} ({role.label})")
        for email, _name, role, _phone in STAFF:
            self.stdout.write(f"  {email:28} staff: {role.label}")
        self.stdout.write(f"  {ADMIN[0]:28} staff: superuser")
        if filed:
            self.stdout.write(f"Filed {len(filed)} demo tickets, with their replies, escalation and rating.")
