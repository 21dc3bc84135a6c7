"""Closed months are judged again when evidence that touches them changes (credits.evidence):

- a month's invoice amount is frozen on its row when it is first closed, so that closing it again
  uses that month's invoice, not the contract's amount of the day. Rows closed before this
  migration get the contract's amount and currency as they stand now (the amount they were
  closed with was not kept);
- when closing again changes a month's tier or credit, the row says when (credit_changed_at), and
  a claim decided before it is flagged (figure_changed_at), never changed;
- two claim events: refigured (a claim awaiting review follows the new figure) and flagged;
- reopened months found by a partial index (the hourly sweep asks for them every time).
"""

from django.db import migrations, models


def freeze_invoices(apps, schema_editor):
    MonthlyUptime = apps.get_model("credits", "MonthlyUptime")
    Contract = apps.get_model("contracts", "Contract")
    for pk, amount in (
        Contract.objects.filter(monthly_uptimes__isnull=False).distinct().values_list("pk", "monthly_invoice_amount")
    ):
        MonthlyUptime.objects.filter(contract_id=pk).update(invoice_amount=amount)


class Migration(migrations.Migration):
    dependencies = [
        ("credits", "0002_compact_breakdown"),
    ]

    operations = [
        migrations.AddField(
            model_name="monthlyuptime",
            name="invoice_amount",
            field=models.DecimalField(decimal_places=4, max_digits=14, null=True),
        ),
        migrations.RunPython(freeze_invoices, migrations.RunPython.noop, elidable=True),
        migrations.AlterField(
            model_name="monthlyuptime",
            name="invoice_amount",
            field=models.DecimalField(
                decimal_places=4,
                help_text="The month's invoice, frozen when the month is first closed: closing it again uses this "
                "amount and currency, whatever the contract's are by then.",
                max_digits=14,
            ),
        ),
        migrations.AddField(
            model_name="monthlyuptime",
            name="credit_changed_at",
            field=models.DateTimeField(
                blank=True,
                help_text="When closing it again last changed its tier or credit (staff review it).",
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="claim",
            name="figure_changed_at",
            field=models.DateTimeField(
                blank=True,
                help_text="When its month was judged again to another tier or credit after the claim was decided: "
                "the claim is not changed; staff review it.",
                null=True,
            ),
        ),
        migrations.AlterField(
            model_name="claimevent",
            name="kind",
            field=models.CharField(
                choices=[
                    ("submitted", "Submitted"),
                    ("approved", "Approved"),
                    ("rejected", "Rejected"),
                    ("adjusted", "Amount adjusted"),
                    ("settled", "Credited / refunded"),
                    ("refigured", "Eligible amount follows the month judged again"),
                    ("flagged", "Month judged again after the decision"),
                ],
                max_length=10,
            ),
        ),
        migrations.AddIndex(
            model_name="claim",
            index=models.Index(
                condition=models.Q(("figure_changed_at__isnull", False)),
                fields=["figure_changed_at"],
                name="claim_figure_changed",
            ),
        ),
        migrations.AddIndex(
            model_name="monthlyuptime",
            index=models.Index(
                condition=models.Q(("credit_changed_at__isnull", False)),
                fields=["credit_changed_at"],
                name="uptime_credit_changed",
            ),
        ),
        migrations.AddIndex(
            model_name="monthlyuptime",
            index=models.Index(condition=models.Q(("status", "reopened")), fields=["month"], name="uptime_reopened"),
        ),
    ]
