"""The customer API of what an organisation has (/api/v1/contracts/, services/, maintenance-windows/,
outages/): outputs.py (what is returned), views.py (one class per URL). Read only."""
