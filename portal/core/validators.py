"""Validators the ground's models use (and the layers above reuse)."""

import zoneinfo

from django.core.exceptions import ValidationError


def validate_timezone(value: str) -> None:
    """An IANA timezone that zoneinfo knows (Africa/Nairobi), not an abbreviation or an offset."""
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"“{value}” is not a known IANA timezone (e.g. Africa/Nairobi).") from None
