from django.apps import AppConfig


class CreditsConfig(AppConfig):
    name = "credits"

    def ready(self):
        from contracts.evidence import contract_reframing, evidence_moved

        from .evidence import on_contract_reframing, on_evidence_moved

        # An outage or a maintenance window recorded or changed: the closed months it touches are
        # reopened, in the change's transaction, and closed again with the new figure.
        evidence_moved.connect(on_evidence_moved, dispatch_uid="credits-reopen-months")
        # A contract's SLA or dates about to change: refused where its closed months would be judged
        # by other terms, or fall outside it.
        contract_reframing.connect(on_contract_reframing, dispatch_uid="credits-closed-months-frame")
