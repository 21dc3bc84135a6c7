"""portal.core.cache.RedisCache: Django's Redis cache, keeping one client per connection pool."""

import threading

import pytest
from django.conf import settings

from portal.core.cache import RedisCache

pytestmark = pytest.mark.redis


@pytest.fixture
def cache():
    cache = RedisCache(settings.REDIS_URL or "redis://127.0.0.1:6379/0", {"KEY_PREFIX": "test-portal-cache"})
    yield cache
    cache.delete_many(["a", "b", "n"])


def test_it_is_django_s_cache_on_one_client(cache):
    client = cache._cache.get_client()
    cache.set("a", {"x": 1}, 60)
    assert cache.get("a") == {"x": 1} and cache.get("b", "absent") == "absent"
    assert cache.add("a", 2) is False and cache.add("b", 2) is True and cache.get("b") == 2
    assert cache.incr("b") == 3
    cache.delete("a")
    assert cache.get("a") is None
    assert cache._cache.get_client() is client and cache._cache.get_client(write=True) is client


def test_the_client_is_shared_by_threads(cache):
    cache.set("n", 0, 60)
    errors = []

    def add():
        try:
            for _ in range(50):
                cache.incr("n")
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=add) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and cache.get("n") == 200
