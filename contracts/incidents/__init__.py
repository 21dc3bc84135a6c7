"""Incidents: outages published to customers, by responsibility.

- services: staff (or the alert sweep) draft, publish and update incidents, and set an outage's
  impact per service and its scope (audited; a closed month it touches is judged again);
- publishing: `update_publish`, the one function that publishes an update and sends its emails
  (and webhooks) to the contacts of every contract the incident affects;
- mail: the incident's thread (Message-IDs, Reply-To) and its reply address read back;
- selectors: what a customer (scoped to their organisation) and staff read.
"""
