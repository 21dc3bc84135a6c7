"""The shipped templates' names without " (template)": customers read an SLA's name (contract pages,
statements, emails); the admin adds the word to a template's name itself (SLA.__str__)."""

from django.db import migrations

SUFFIX = " (template)"


def drop_suffix(apps, schema_editor):
    SLA = apps.get_model("contracts", "SLA")
    for sla in SLA.objects.filter(is_template=True, name__endswith=SUFFIX):
        name = sla.name.removesuffix(SUFFIX)
        if not SLA.objects.filter(name=name).exists():
            SLA.objects.filter(pk=sla.pk).update(name=name)


def add_suffix(apps, schema_editor):
    SLA = apps.get_model("contracts", "SLA")
    for sla in SLA.objects.filter(is_template=True).exclude(name__endswith=SUFFIX):
        SLA.objects.filter(pk=sla.pk).update(name=sla.name + SUFFIX)


class Migration(migrations.Migration):
    dependencies = [("contracts", "0014_organisation_default_contract")]

    operations = [migrations.RunPython(drop_suffix, add_suffix)]
