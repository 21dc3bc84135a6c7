"""Vulnerability reports come from an address, not an account (docs/decisions.md): each existing
report keeps its reporter's address and name on a SecurityReport, with its receipt as the start of
its email thread, and is filed by the reports' own account (which never logs in) instead of the
reporter's account. A report sent with a customer's address leaves the customer's account; the
accounts the form made for reporters (inactive, of the reports' organisation) are deleted. Audited."""

from django.contrib.auth.hashers import make_password
from django.db import migrations
from django.db.models.deletion import ProtectedError
from django.utils import timezone

REPORTS_ACCOUNT = ("reporter@security-reports.invalid", "The reporter (by email)")  # tickets.security


def address_key(email: str) -> str:  # tickets.security.address_key
    local, _, domain = email.strip().lower().rpartition("@")
    return f"{local.split('+', 1)[0]}@{domain}"


def _audit(AuditEntry, now, action, target_type, target_id, target_repr, before, after):
    AuditEntry.objects.create(
        at=now, actor=None, actor_email="", action=action, target_type=target_type, target_id=str(target_id),
        target_repr=target_repr[:300], before=before, after=after,
    )  # fmt: skip


def reports_from_addresses(apps, schema_editor):
    Ticket = apps.get_model("tickets", "Ticket")
    SecurityReport = apps.get_model("tickets", "SecurityReport")
    User = apps.get_model("portal", "User")
    OutboxMessage = apps.get_model("portal", "OutboxMessage")
    AuditEntry = apps.get_model("portal", "AuditEntry")
    reports = list(Ticket.objects.filter(kind="security", security_report__isnull=True).select_related("created_by"))
    if not reports:
        return
    now = timezone.now()
    account = User.objects.filter(email=REPORTS_ACCOUNT[0]).first()
    if account is None:
        account = User.objects.create(
            email=REPORTS_ACCOUNT[0], name=REPORTS_ACCOUNT[1], organisation_id=reports[0].organisation_id,
            customer_role="member", is_active=False, password=make_password(None),
        )  # fmt: skip
    reporters = {}
    for ticket in reports:
        reporter = ticket.created_by
        receipt = OutboxMessage.objects.filter(key=f"security-report:{ticket.pk}:receipt").first()
        SecurityReport.objects.create(
            ticket=ticket, reporter_email=reporter.email, reporter_name=reporter.name, submitted_at=ticket.filed_at,
            address_key=address_key(reporter.email), source_key="",
            thread=[{"id": receipt.message_id, "at": receipt.created_at.isoformat()}] if receipt else [],
        )  # fmt: skip
        Ticket.objects.filter(pk=ticket.pk).update(created_by=account)
        _audit(
            AuditEntry, now, "security_report.filer", "tickets.ticket", ticket.pk, f"#{ticket.pk} Vulnerability report",
            {"created_by": reporter.email}, {"created_by": account.email, "reporter_email": reporter.email},
        )  # fmt: skip
        reporters[reporter.pk] = reporter
    for reporter in reporters.values():
        made_by_the_form = reporter.organisation_id == account.organisation_id and not reporter.is_active
        if reporter.pk == account.pk or not made_by_the_form:
            continue
        pk = reporter.pk
        try:
            reporter.delete()
        except ProtectedError:
            continue  # still named elsewhere (a message, a file): it stays, inactive
        _audit(
            AuditEntry, now, "user.deleted", "portal.user", pk, reporter.email,
            {"email": reporter.email, "is_active": False, "reason": "a reporter's account (reports come from addresses)"}, {},
        )  # fmt: skip


class Migration(migrations.Migration):
    dependencies = [
        ("tickets", "0006_security_report"),
        ("portal", "0006_staff_permissions"),
    ]

    operations = [migrations.RunPython(reports_from_addresses, migrations.RunPython.noop)]
