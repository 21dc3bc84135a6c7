"""Email in (issue "Support channels"): one service that every way in hands a raw message to
(`python manage.py ingest_email` from an MTA's pipe, the IMAP poller, a provider's webhook).

- `service.ingest` stores the message once (InboundMessage: unique on the hash of its bytes and on
  its sender and Message-ID) in the transaction of its effect, so the same message ingested twice,
  by two callers at once or after a crash is one ticket or one reply.
- `group` is what a group of messages shares: the IMAP poller stores a fetched group in one
  transaction, a savepoint each, reading senders, contracts and terms once (the pipe command and
  the webhook are a group of one).
- `route` decides what the message is: security mail (tickets.security), a reply to a ticket, a new
  ticket, an automatic message (never answered), or held for staff (the triage list in the admin).
- `answers` writes the few emails a sender gets back: at most one polite answer a day to a held
  sender, and the refusal of a message over the size limit.
"""
