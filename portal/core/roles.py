from django.db import models


class CustomerRole(models.TextChoices):
    ADMIN = "admin", "Customer admin"
    MEMBER = "member", "Customer member"


class StaffRole(models.TextChoices):
    SUPPORT_AGENT = "support_agent", "Support agent"
    SUPPORT_LEAD = "support_lead", "Support lead"
    ACCOUNT_MANAGER = "account_manager", "Account manager"
    CLOUD_SOLUTIONS_MANAGER = "cloud_solutions_manager", "Cloud solutions manager"
    SECURITY = "security", "Security"


def sees_security(user) -> bool:
    """Vulnerability reports are shown to security staff only."""
    return getattr(user, "staff_role", "") == StaffRole.SECURITY
