"""The customer ticket API: base.py (authentication, parsing, input checks, error shapes),
outputs.py (what is returned), views.py (one class per URL)."""
