"""Test data through the same shapes the product uses. Alice and Bob at one customer (Acme),
Charlie at another (Globex), Sam on support. Staff are in their role's group (its permissions, as
in production), superusers only where a test says so."""

from datetime import date
from decimal import Decimal

import factory
from django.contrib.auth.models import Group

from contracts.models import SLA, Contract, Organisation, Service
from portal.core.roles import CustomerRole, StaffRole, role_group_name
from portal.models import User

PASSWORD = "correct-horse-battery-staple"


class OrganisationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organisation
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Customer {n}")
    slug = factory.Sequence(lambda n: f"customer-{n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("email",)
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    name = factory.Faker("name")
    organisation = factory.SubFactory(OrganisationFactory)
    customer_role = CustomerRole.MEMBER
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()
            if obj.organisation_id:
                # A customer is a support contact of their organisation's contracts, as the data
                # migration made everyone and as an invitation does by default; tests of the
                # designation take it away.
                for contract in Contract.objects.filter(organisation_id=obj.organisation_id):
                    contract.support_contacts.add(obj)


class StaffFactory(UserFactory):
    """A staff member with a role (support agent unless given another, or "" for none), in the role's
    group as production keeps them (portal.core.staff_access): its permissions and no more."""

    organisation = None
    customer_role = ""
    is_staff = True
    is_superuser = False
    staff_role = StaffRole.SUPPORT_AGENT

    @factory.post_generation
    def _role_group(obj, create, extracted, **kwargs):
        if create and obj.staff_role:
            # The membership as test data (the through row), not an audited change of access.
            group = Group.objects.get(name=role_group_name(obj.staff_role))
            obj.groups.through.objects.get_or_create(user_id=obj.pk, group_id=group.pk)


class ServiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Service
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Service {n}")
    slug = factory.Sequence(lambda n: f"service-{n}")


class ContractFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contract
        skip_postgeneration_save = True

    organisation = factory.SubFactory(OrganisationFactory)
    reference = factory.Sequence(lambda n: f"C-{n:05d}")
    name = factory.Sequence(lambda n: f"Contract {n}")
    sla = factory.LazyFunction(lambda: SLA.objects.get(template_key="kaluari-cloud-backup"))
    starts_on = date(2026, 1, 1)
    monthly_invoice_amount = Decimal("150000")
    currency = "KES"

    @factory.post_generation
    def services(obj, create, extracted, **kwargs):
        if create:
            obj.services.set(extracted or [ServiceFactory(name="Cloud Backup", slug="cloud-backup")])

    @factory.post_generation
    def contacts(obj, create, extracted, **kwargs):
        if create and extracted:
            obj.contacts.set(extracted)

    @factory.post_generation
    def support_contacts(obj, create, extracted, **kwargs):
        """Everyone of the organisation unless given (who may open tickets on it)."""
        if create:
            obj.support_contacts.set(extracted if extracted is not None else obj.organisation.users.all())
