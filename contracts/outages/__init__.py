"""Outages, by responsibility:

- services: staff record, change and delete outages, and set their cause (audited);
- alerts: the monitoring webhook's tokens and its alerts turned into outages;
- status: the read behind the public status page.
"""
