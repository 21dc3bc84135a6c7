"""/status/feed.atom: the status page's incidents and maintenance as an Atom feed (RFC 4287), for
feed readers and chat integrations; the status page names it with <link rel="alternate">.

One entry per incident (its timeline, newest first, in the entry's content; updated at its latest
update) and one per maintenance window (updated when it was last published). Drawn from the same
public record as the JSON, so nothing customer-scoped appears."""

from django.conf import settings
from django.contrib.syndication.views import Feed
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.feedgenerator import Atom1Feed

from .outages.public import Incident
from .outages.statuspage import snapshot, status_url
from .status_api import public_response


class StatusFeed(Feed):
    feed_type = Atom1Feed
    title = "SLA Portal status: incidents and maintenance"
    subtitle = "Incidents with their updates, and scheduled maintenance, of the services on the status page."
    author_name = "SLA Portal"

    def __call__(self, request, *args, **kwargs):
        response = super().__call__(request, *args, **kwargs)
        return public_response(request, response.content, response["Content-Type"])

    def link(self):
        return status_url()

    def feed_url(self):
        return settings.PORTAL_BASE_URL + reverse("status-feed")

    def items(self):
        snap = snapshot(now=timezone.now())
        entries = [*snap.latest, *snap.windows]
        return sorted(entries, key=self._updated, reverse=True)

    @staticmethod
    def _updated(item):
        return item.updated_at if isinstance(item, Incident) else item.published_at

    def item_title(self, item):
        if isinstance(item, Incident):
            return f"{item.title} [{item.status_label}]"
        return f"Maintenance: {item.title}"

    def item_description(self, item):
        if isinstance(item, Incident):
            return render_to_string("status/_feed_incident.html", {"incident": item})
        return render_to_string("status/_feed_window.html", {"window": item, "services": list(item.services.all())})

    def item_link(self, item):
        if isinstance(item, Incident):
            return settings.PORTAL_BASE_URL + reverse("status-incident", args=[item.id])
        return f"{status_url()}#maintenance-{item.pk}"

    def item_guid(self, item):
        if isinstance(item, Incident):
            return self.item_link(item)
        return f"{status_url()}#maintenance-{item.pk}"

    item_guid_is_permalink = False

    def item_pubdate(self, item):
        return item.created_at if isinstance(item, Incident) else item.published_at

    def item_updateddate(self, item):
        return self._updated(item)
