"""The contracts app in the admin: SLA terms and contracts, services and outages, maintenance
windows. Each module registers its own admins."""

from . import maintenance, outages, terms  # noqa: F401
