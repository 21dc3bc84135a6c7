"""Whether a row is among an object's many-to-many relation, without a query when the relation was
read with the object (prefetch_related): a group of inbound messages reads each organisation's
contracts once with their support contacts and services, and the checks of every filing use them."""

from __future__ import annotations


def among(obj, relation: str, pk) -> bool:
    if relation in getattr(obj, "_prefetched_objects_cache", {}):
        return any(o.pk == pk for o in getattr(obj, relation).all())
    return getattr(obj, relation).filter(pk=pk).exists()
