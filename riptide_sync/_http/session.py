"""The client's ``requests.Session`` and the defaults every HTTP call uses."""

from __future__ import annotations

import queue
import threading
from typing import Any

import requests
import requests.adapters

from .._config import ClientConfig

__all__ = ["make_session", "url_for", "request_timeout", "close_inherited_session"]

POOL_MAXSIZE = 256
"""Idle connections kept per host. urllib3's default is 10: with more requests in flight
at once (8 threads each streaming a long list in 4 parallel requests is 32), every
connection beyond the 10th is discarded on return with a "Connection pool is full"
warning, and a new one is opened next time. 256 covers any thread pool a sync code base
runs; it bounds idle sockets, not concurrency (the pool never blocks). Not 0 ("no limit"
for a stdlib queue): gevent's patched queue reads 0 differently, with a warning."""


def make_session(config: ClientConfig) -> requests.Session:
    """Create the one ``requests.Session`` a client uses for every HTTP call.

    It carries the client's headers (``User-Agent``, and ``X-API-Key`` when a key is set),
    TLS verification (``config.verify``: on by default) and, when ``config.proxy`` is set,
    that proxy for both schemes. requests still reads ``*_PROXY``/``NO_PROXY`` from the
    environment when no proxy is configured. The caller owns the session and closes it.
    """
    session = requests.Session()
    for prefix in ("http://", "https://"):
        session.mount(prefix, requests.adapters.HTTPAdapter(pool_maxsize=POOL_MAXSIZE))
    session.headers.update(config.headers)
    session.verify = config.verify
    if config.proxy:
        session.proxies = {"http": config.proxy, "https": config.proxy}
    return session


def url_for(config: ClientConfig, path: str) -> str:
    """The absolute URL of a route (``path`` starts with ``/``)."""
    return config.base_url.rstrip("/") + path


def request_timeout(config: ClientConfig) -> tuple[float, float | None]:
    """requests' ``(connect, read)`` timeout for a call: never unset (requests has no
    default and would wait for ever, psf/requests "Timeouts")."""
    return (config.connect_timeout, config.timeout)


def close_inherited_session(session: requests.Session) -> None:
    """Close, in a forked child, the connections its ``session`` inherited from the parent.

    Runs on the child's only thread right after ``fork()``. The pools' locks are copies of
    the parent's and may have been held by a parent thread at the fork, so they are made
    anew first; closing a connection then only closes the child's file descriptor (no
    ``shutdown()``), which leaves the parent's socket, and its request, untouched.
    """
    for adapter in list(session.adapters.values()):
        managers = [getattr(adapter, "poolmanager", None)]
        managers += list((getattr(adapter, "proxy_manager", None) or {}).values())
        for manager in managers:
            pools = getattr(manager, "pools", None)
            if pools is None:
                continue
            if hasattr(pools, "lock"):
                pools.lock = threading.RLock()
            for pool in list(getattr(pools, "_container", {}).values()):
                _renew_queue_locks(getattr(pool, "pool", None))
    session.close()


def _renew_queue_locks(idle: Any) -> None:
    """Give a ``queue.Queue`` fresh locks (its old ones may be held by a thread that is gone)."""
    if not isinstance(idle, queue.Queue):
        return
    idle.mutex = threading.Lock()
    idle.not_empty = threading.Condition(idle.mutex)
    idle.not_full = threading.Condition(idle.mutex)
    idle.all_tasks_done = threading.Condition(idle.mutex)
