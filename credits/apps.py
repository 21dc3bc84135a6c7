from django.apps import AppConfig


class CreditsConfig(AppConfig):
    name = "credits"

    def ready(self):
        from contracts.evidence import evidence_moved

        from .evidence import on_evidence_moved

        # An outage or a maintenance window recorded or changed: the closed months it touches are
        # reopened, in the change's transaction, and closed again with the new figure.
        evidence_moved.connect(on_evidence_moved, dispatch_uid="credits-reopen-months")
