import uuid
from datetime import timedelta

from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm, PasswordChangeForm, PasswordResetForm
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from portal.core.api_tokens import tokens_of
from portal.core.form_limits import exceeded
from portal.core.notify_rules import Kind, recipients
from portal.core.outbox import outbox_enqueue
from portal.core.unsubscribe import email_to
from portal.models import OutboxMessage


class EmailAuthenticationForm(AuthenticationForm):
    username = forms.EmailField(
        label="Email", widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"})
    )


class TokenRevokingPasswordChangeForm(PasswordChangeForm):
    """Django's password change, with the offer to revoke the person's API tokens too (a password
    change ends their other sessions; a token made where the old password was known would go on)."""

    revoke_tokens = forms.BooleanField(
        required=False,
        label="Also revoke my API tokens",
        help_text="Do this if someone else may have known your password: they may have made a token with it.",
    )

    def __init__(self, user, *args, **kwargs):
        super().__init__(user, *args, **kwargs)
        if not tokens_of(user).exists():  # nothing to revoke (staff hold none): not offered
            del self.fields["revoke_tokens"]


# Reset emails to one account: typed by anyone, the form would otherwise flood a mailbox.
RESETS = ((1, timedelta(minutes=10)), (3, timedelta(days=1)))


class OutboxPasswordResetForm(PasswordResetForm):
    """Django's reset form, but the email goes through the outbox like every other email, at most
    RESETS to an account. The page says the same whether or not the address has an account, and
    whether or not an email went."""

    def send_mail(
        self, subject_template_name, email_template_name, context, from_email, to_email, html_email_template_name=None
    ):
        with transaction.atomic():  # two requests at once count one after the other
            self._send(context)

    def _send(self, context):
        user = context["user"]
        sent = OutboxMessage.objects.filter(template="password_reset")
        limits = [("to", user.email, limit, "this account") for limit in RESETS]
        if exceeded(sent, at="created_at", limits=limits, now=timezone.now()):
            return
        # The portal's own address, as every email's links: never the request's Host header, which
        # whoever asks for the reset chooses among the allowed hosts.
        reset_url = settings.PORTAL_BASE_URL + reverse(
            "password_reset_confirm", kwargs={"uidb64": context["uid"], "token": context["token"]}
        )
        for recipient in recipients(Kind.ACCOUNT, users=[user]):  # mandatory: never an unsubscribe link
            outbox_enqueue(
                email=email_to(
                    recipient,
                    key=f"password-reset:{user.pk}:{uuid.uuid4().hex}",
                    template="password_reset",
                    context={"user": user, "reset_url": reset_url},
                )
            )
