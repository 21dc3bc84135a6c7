"""Admins whose saves and deletions are audited with before and after (portal.core.audit): contracts
(invoice amount, currency, contacts, services, SLA), organisations (their escalation contacts) and
working calendars (hours, timezone, holidays; their closed dates have an entry of their own)."""

from __future__ import annotations

from django.db import transaction

from .audit import audit_deleted, audited_edit, row_state


class AuditedAdmin:
    """Mixed in before ModelAdmin. `audit_action` names the entries (`contract` gives
    contract.created, contract.changed, contract.deleted); `audit_state` is what they record."""

    audit_action: str

    def audit_state(self, obj) -> dict:
        return row_state(obj)

    def save_model(self, request, obj, form, change):
        """Saved in save_related, with its relations and inlines, inside one audited edit."""

    def save_related(self, request, form, formsets, change):
        with audited_edit(target=form.instance, actor=request.user, action=self.audit_action, state=self.audit_state):
            super().save_model(request, form.instance, form, change)
            super().save_related(request, form, formsets, change)

    def delete_model(self, request, obj):
        with transaction.atomic():
            audit_deleted(actor=request.user, action=self.audit_action, target=obj, state=self.audit_state)
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for obj in queryset:
                audit_deleted(actor=request.user, action=self.audit_action, target=obj, state=self.audit_state)
            super().delete_queryset(request, queryset)
