"""The placeholders of a canned reply: `{{ name }}` (spaces inside the braces optional; a name is
letters, digits and underscores). Nothing else in the text is syntax: no filters, no tags, no
attribute lookups; a text is filled only from a fixed set of values, never evaluated, so a reply
can neither read nor run anything. Stray braces (`{{` or `}}` outside a placeholder, `{%`) are
refused rather than sent to a customer as they were typed. Pure Python (no Django)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_]\w*)\s*\}\}")
STRAY = re.compile(r"\{\{|\}\}|\{%|%\}")


def problems(text: str, known: Iterable[str]) -> list[str]:
    """What is wrong with the placeholders of `text`, in words for the person who wrote it (none: [])."""
    known = set(known)
    out = []
    unknown = list(dict.fromkeys(name for name in PLACEHOLDER.findall(text) if name not in known))
    if unknown:
        names = ", ".join("{{ %s }}" % n for n in unknown)  # noqa: UP031 (braces)
        out.append(f"Unknown placeholder{'s' if len(unknown) > 1 else ''}: {names}.")
    if STRAY.search(PLACEHOLDER.sub("", text)):
        out.append("Braces that are not a placeholder: write a placeholder as {{ name }}, from the list.")
    return out


def used(text: str, known: Iterable[str]) -> list[str]:
    """The known placeholders `text` still holds, in order of first use."""
    known = set(known)
    return list(dict.fromkeys(name for name in PLACEHOLDER.findall(text) if name in known))


def fill(text: str, values: Mapping[str, str]) -> str:
    """`text` with every placeholder replaced by its value (KeyError for one without a value: check
    the text with problems() first). A value is put in as it is, never read as a placeholder again."""
    return PLACEHOLDER.sub(lambda m: str(values[m[1]]), text)
