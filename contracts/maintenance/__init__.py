"""Maintenance windows, by responsibility:

- judging: a window judged by a contract's rules (notice, off-peak hours, annual cap), what it
  keeps and what counts as downtime;
- selectors: the reads (a customer's windows, staff's table, the month-end's exclusions);
- services: the writes (publish, update, cancel);
- emails: the notices' emails, through the outbox;
- sweep: the beat task's pass that sends the notices and reminders when they are due;
- ical: the secret of an organisation's iCal feed.
"""
