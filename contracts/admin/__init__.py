"""The contracts app in the admin: SLA terms and contracts, services and outages, maintenance
windows, organisations and their people. Each module registers its own admins."""

from . import incidents, maintenance, outages, people, terms  # noqa: F401
