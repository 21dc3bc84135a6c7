"""`make test` runs the suite on two processes (pytest-xdist): each has its own test database
(pytest-django) and its own Redis database (tests/conftest.py), since every test flushes the cache."""

import os

import pytest

from .conftest import REDIS_URL_GIVEN, _worker_redis_url


@pytest.mark.parametrize(
    ("given", "worker", "used"),
    [
        ("redis://127.0.0.1:6379/5", "gw0", "redis://127.0.0.1:6379/5"),
        ("redis://127.0.0.1:6379/5", "gw1", "redis://127.0.0.1:6379/9"),
        ("redis://127.0.0.1:6379", "gw1", "redis://127.0.0.1:6379/4"),
        ("redis://:secret@127.0.0.1:6379/12", "gw1", "redis://:secret@127.0.0.1:6379/0"),
    ],
)
def test_each_worker_has_its_own_redis_database_number(given, worker, used):
    assert _worker_redis_url(given, worker) == used


@pytest.mark.redis
def test_the_cache_the_broker_and_subprocesses_use_this_workers_database(settings):
    import redis
    from django.core.cache import cache

    from portal.celery import app

    worker = os.environ.get("PYTEST_XDIST_WORKER")
    url = _worker_redis_url(REDIS_URL_GIVEN, worker) if worker else REDIS_URL_GIVEN
    assert settings.REDIS_URL == os.environ["REDIS_URL"] == app.conf.broker_url == url
    cache.set("xdist-probe", worker or "main")
    assert redis.Redis.from_url(url).exists(cache.make_key("xdist-probe"))
