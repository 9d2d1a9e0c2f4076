"""The client's ``requests.Session`` and the defaults every HTTP call uses."""

from __future__ import annotations

import requests

from .._config import ClientConfig
from .wakeable import WakeableAdapter

__all__ = ["make_session", "url_for", "request_timeout"]


def make_session(config: ClientConfig) -> requests.Session:
    """Create the one ``requests.Session`` a client uses for every HTTP call.

    It carries the client's headers (``User-Agent``, and ``X-API-Key`` when a key is set),
    TLS verification (``config.verify``: on by default) and, when ``config.proxy`` is set,
    that proxy for both schemes. requests still reads ``*_PROXY``/``NO_PROXY`` from the
    environment when no proxy is configured. The caller owns the session and closes it.
    """
    session = requests.Session()
    # Waits for headers that close() can end and that have an overall deadline (wakeable.py).
    adapter = WakeableAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
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
