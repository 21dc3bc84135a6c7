"""API tokens move from DRF's authtoken (the secret itself in the database) to django-rest-knox (a
SHA-512 digest and a 15-character lookup key).

knox looks a token up by its first 15 characters and compares the SHA-512 of the whole string, so
an old 40-character DRF key keeps working once stored that way: customers' tokens are hashed in
place (same secret, same owner, same creation time, no expiry, as before). Staff tokens are
deleted: staff hold no API tokens. Both are audited. Then DRF's table is dropped, with its
migration records, so that no secret is left in the database (rest_framework.authtoken is no
longer installed)."""

import hashlib
from datetime import UTC

from django.db import migrations
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

DRF_TABLE = "authtoken_token"


def knox_digest(secret: str) -> str:
    # knox.crypto.hash_token with REST_KNOX["SECURE_HASH_ALGORITHM"] = "hashlib.sha512" (settings):
    # the SHA-512 of the token's UTF-8 bytes, in hex. Written out so that the migration does not
    # follow a later change of setting.
    return hashlib.sha512(secret.encode("utf-8")).hexdigest()


def as_aware(value):
    if isinstance(value, str):  # SQLite hands raw rows back as text
        value = parse_datetime(value)
    if value is not None and timezone.is_naive(value):
        value = value.replace(tzinfo=UTC)
    return value


def hash_drf_tokens(apps, schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        if DRF_TABLE not in connection.introspection.table_names(cursor):
            return  # a database that never had DRF's tokens
        cursor.execute(f"SELECT key, user_id, created FROM {DRF_TABLE}")  # a constant, not input
        rows = cursor.fetchall()
    User = apps.get_model("portal", "User")
    AuthToken = apps.get_model("knox", "AuthToken")
    AuditEntry = apps.get_model("portal", "AuditEntry")
    users = User.objects.in_bulk({user_id for _, user_id, _ in rows})
    staff = set(User.objects.filter(Q(is_staff=True) | Q(is_superuser=True)).values_list("pk", flat=True))
    now = timezone.now()
    for key, user_id, created in rows:
        user = users[user_id]
        prefix = key[:15]
        if user_id in staff:
            action, after = "token.revoked", {"prefix": prefix, "reason": "staff hold no API tokens (migration)"}
        else:
            digest = knox_digest(key)
            AuthToken(digest=digest, token_key=prefix, user_id=user_id, expiry=None).save(force_insert=True)
            AuthToken.objects.filter(digest=digest).update(created=as_aware(created) or now)  # not auto_now_add's
            action, after = "token.hashed", {"prefix": prefix, "expiry": "never"}
        AuditEntry.objects.create(
            at=now,
            actor=None,
            actor_email="",
            action=action,
            target_type="portal.user",
            target_id=str(user_id),
            target_repr=(f"{user.name} <{user.email}>" if user.name else user.email)[:300],
            after=after,
        )
    schema_editor.execute(f"DROP TABLE {DRF_TABLE}")
    schema_editor.execute("DELETE FROM django_migrations WHERE app = %s", ["authtoken"])


class Migration(migrations.Migration):
    dependencies = [
        ("knox", "0009_extend_authtoken_field"),
        ("portal", "0004_outbox_context"),
    ]

    operations = [
        migrations.CreateModel(
            name="ApiToken",
            fields=[],
            options={
                "verbose_name": "API token",
                "proxy": True,
                "indexes": [],
                "constraints": [],
            },
            bases=("knox.authtoken",),
        ),
        # Irreversible on purpose: the secrets are gone once hashed.
        migrations.RunPython(hash_drf_tokens, migrations.RunPython.noop),
    ]
