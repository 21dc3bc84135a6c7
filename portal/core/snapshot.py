"""An email's context frozen when its outbox row is written, and thawed when the row is sent.

An email says what was true when its cause happened (a notice for a maintenance window's second
revision shows that revision's times, even if a third is saved before a worker sends it), but
rendering its three templates inside the sweep's transaction would keep the transaction, and the
rows it locks, open for work that needs neither (bench/RESULTS.md, session 3). So the row stores
the context as data, taken in the change's
transaction, and the worker renders it (portal.core.outbox):

- None, bool, int, float and str as themselves; lists, tuples and dicts with str keys as lists and
  dicts of frozen values;
- datetime, date, time, timedelta, Decimal and UUID tagged with their type;
- a model instance as its model and the values of its fields: the fields its class names in
  `EMAIL_FIELDS` (what the email templates read of it), else every concrete field but a password;
  and the related objects already loaded on it (select_related), frozen the same way, one level
  deep. Thawed, it is a real instance (Model.from_db): properties and methods work, and a field
  left out loads from the database on first use, as a deferred field does.

Anything else is refused when the row is written (TypeError), never found when it is sent.
"""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.db.models import DEFERRED

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode  # the C encoder


def freeze(context: dict, memo: dict | None = None) -> str:
    """The context as JSON text. `memo` (one dict for many calls) shares the work of freezing an
    object that several emails of a batch mention."""
    return _encode(_frozen(context, {} if memo is None else memo, root=True))


def thaw(text: str) -> dict:
    return _thawed(json.loads(text)) if text else {}


def _frozen(value, memo: dict, root: bool):
    """JSON-ready data: built as dicts and lists, encoded once (freeze)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, models.Model):
        key = (id(value), root)
        if key not in memo:
            memo[key] = (value, _instance(value, memo, root))  # the object too: its id stays its own
        return memo[key][1]
    if isinstance(value, dict):
        for k in value:
            if not isinstance(k, str) or k.startswith("$"):
                raise TypeError(f"An email context's keys are names, not {k!r}.")
        return {k: _frozen(v, memo, root) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_frozen(v, memo, root) for v in value]
    return _tagged(value)


def _tagged(value) -> dict:
    if isinstance(value, datetime):
        return {"$": "dt", "v": value.isoformat()}
    if isinstance(value, date):
        return {"$": "d", "v": value.isoformat()}
    if isinstance(value, time):
        return {"$": "t", "v": value.isoformat()}
    if isinstance(value, timedelta):
        return {"$": "td", "v": [value.days, value.seconds, value.microseconds]}
    if isinstance(value, Decimal):
        return {"$": "dec", "v": str(value)}
    if isinstance(value, uuid.UUID):
        return {"$": "uuid", "v": str(value)}
    raise TypeError(f"An email context cannot hold a {type(value).__name__}: pass plain values or model instances.")


def _fields(model: type[models.Model]) -> list:
    opts = model._meta
    cached = opts.__dict__.get("_email_fields")
    if cached is None:
        names = getattr(model, "EMAIL_FIELDS", None)
        if names is None:
            cached = [f for f in opts.concrete_fields if f.name != "password"]
        else:
            cached = [opts.pk, *(opts.get_field(n) for n in names if n != opts.pk.name)]
        opts.__dict__["_email_fields"] = cached
    return cached


def _instance(obj: models.Model, memo: dict, root: bool) -> dict:
    model = obj.__class__._meta.concrete_model  # __class__: a lazy request.user answers as its User
    fields = _fields(model)
    out = {"$": "m", "m": model._meta.label_lower, "f": {f.attname: _value(f.value_from_object(obj)) for f in fields}}
    if root:
        related = {}
        for name, other in obj._state.fields_cache.items():
            try:
                field = model._meta.get_field(name)
            except FieldDoesNotExist:
                continue  # a reverse one-to-one's cache: not a field of this model
            if field.concrete and field.is_relation and field in fields:  # forward, and named
                related[name] = None if other is None else _frozen(other, memo, False)
        if related:
            out["r"] = related
    return out


def _value(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (dict, list)):  # a JSONField's value: JSON already, kept as it is
        return {"$": "json", "v": value}
    return _tagged(value)


_THAW = {
    "dt": datetime.fromisoformat,
    "d": date.fromisoformat,
    "t": time.fromisoformat,
    "td": lambda v: timedelta(days=v[0], seconds=v[1], microseconds=v[2]),
    "dec": Decimal,
    "uuid": uuid.UUID,
    "json": lambda v: v,
}


def _thawed(value):
    if isinstance(value, list):
        return [_thawed(v) for v in value]
    if not isinstance(value, dict):
        return value
    tag = value.get("$")
    if tag is None:
        return {k: _thawed(v) for k, v in value.items()}
    if tag != "m":
        return _THAW[tag](value["v"])
    model = apps.get_model(value["m"])
    given = value["f"]
    # Fields left out are DEFERRED: loaded from the database on first use.
    values = [_thawed(given[f.attname]) if f.attname in given else DEFERRED for f in model._meta.concrete_fields]
    instance = model.from_db("default", None, values)
    for name, other in value.get("r", {}).items():
        model._meta.get_field(name).set_cached_value(instance, None if other is None else _thawed(other))
    return instance
