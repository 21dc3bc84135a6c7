from django.apps import AppConfig


class TicketsConfig(AppConfig):
    name = "tickets"

    def ready(self):
        from contracts.calendars import terms_moved

        from .tasks import on_terms_moved

        # An edit of a calendar or of clock terms: the open tickets it touches get their deadlines again.
        terms_moved.connect(on_terms_moved, dispatch_uid="tickets-recompute-deadlines")
