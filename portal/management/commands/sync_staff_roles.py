from django.core.management.base import BaseCommand

from portal.core.staff_access import role_groups_sync


class Command(BaseCommand):
    help = (
        "Create the staff roles' groups with exactly the permissions of the matrix (portal.core.roles), "
        "and bring every staff member's role in step with their group (idempotent; migrate does it too)."
    )

    def handle(self, *args, **options):
        changes = role_groups_sync()
        for change in changes:
            self.stdout.write(f"  {change}")
        self.stdout.write(self.style.SUCCESS("Staff roles in step." if not changes else f"{len(changes)} change(s)."))
