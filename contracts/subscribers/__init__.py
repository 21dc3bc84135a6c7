"""Public subscriptions to the status page (issue 20, item 6): anyone subscribes by email, with no
account, to every public service or chosen ones; double opt-in; one-click unsubscribe (RFC 8058).
services.py changes state (request, confirm, change, unsubscribe); emails.py writes the emails
subscribers get (maintenance notices, incident updates)."""
