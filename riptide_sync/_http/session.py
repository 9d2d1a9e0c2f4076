"""The client's ``requests.Session`` and the defaults every HTTP call uses, plus the two
rules HTTP and WebSocket share: which CA bundle verifies TLS, and which proxy (if any)
a connection goes through.

- **TLS** (:func:`resolve_verify`): ``verify=False`` or a CA bundle path always wins, over
  ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` too (requests alone would let those
  override ``session.verify``). ``verify=True`` (the default) means "verify, against the
  bundle the environment names if it names one (``REQUESTS_CA_BUNDLE``, then
  ``CURL_CA_BUNDLE``), else the default CAs": WebSocket and HTTP use the same bundle.
- **Proxies** (:func:`proxy_for`): a connection goes through ``proxy=`` when it is set,
  else through the ``*_PROXY`` variables (``ALL_PROXY`` included), **except** to a host
  ``NO_PROXY`` matches, which is always reached directly, whichever way the proxy was
  given (as curl does). The same decision is made for every HTTP call and every
  WebSocket handshake.
"""

from __future__ import annotations

import importlib.util
import os
import queue
import threading
from typing import Any, Mapping
from urllib.parse import urlsplit, urlunsplit

import requests
import requests.adapters
import requests.utils

from .._config import ClientConfig
from ..exceptions import ConfigError
from .wakeable import WakeableAdapter

__all__ = [
    "make_session", "url_for", "request_timeout", "resolve_verify", "proxy_for", "check_proxy_support",
    "close_inherited_session",
]

_CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def resolve_verify(verify: bool | str, environ: Mapping[str, str] | None = None) -> bool | str:
    """The TLS verification every connection uses (see the module docstring).

    Returns:
        False, a CA bundle path (file or directory), or True (the default CAs).
    """
    if verify is not True:
        return verify
    env = os.environ if environ is None else environ
    for name in _CA_BUNDLE_VARIABLES:
        bundle = env.get(name)
        if bundle:
            return bundle
    return True


def _http_url(url: str) -> str:
    """The http(s) URL a ws(s) URL stands for in proxy rules (``ws`` -> ``http``)."""
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme.lower(), parts.scheme.lower())
    return urlunsplit((scheme, parts.netloc, parts.path or "/", parts.query, ""))


def proxy_for(config: ClientConfig, url: str) -> str | None:
    """The proxy URL a connection to ``url`` (http, https, ws or wss) goes through, or
    None for a direct connection (see the module docstring).

    Remembered per ``config.proxy`` and origin while the proxy variables keep their
    values (deciding walks os.environ three times: ~0.5 ms, on every request and every
    WebSocket handshake)."""
    parts = urlsplit(url)
    key = (config.proxy, parts.scheme, parts.netloc,
           tuple(os.environ.get(name) for name in _PROXY_VARIABLES))
    try:
        return _proxy_decisions[key]
    except KeyError:
        pass
    proxy = _decide_proxy(config, url)
    if len(_proxy_decisions) >= 256:
        _proxy_decisions.clear()
    _proxy_decisions[key] = proxy
    return proxy


_PROXY_VARIABLES = tuple(
    name for base in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
    for name in (base, base.upper())
) + ("REQUEST_METHOD",)
"""The variables a proxy decision for an http(s) URL reads (urllib's getproxies() reads
every ``*_proxy`` variable, but only these can apply to one; it ignores HTTP_PROXY when
REQUEST_METHOD is set, as under CGI). Proxies from the system settings (Windows registry,
macOS) are read once per origin and these variables' values."""

_proxy_decisions: dict[tuple[Any, ...], str | None] = {}


def _decide_proxy(config: ClientConfig, url: str) -> str | None:
    target = _http_url(url)
    if requests.utils.should_bypass_proxies(target, no_proxy=None):
        return None  # NO_PROXY names this host: direct, whatever the proxy source
    if config.proxy:
        return config.proxy
    proxies = requests.utils.get_environ_proxies(target, no_proxy=None)
    return requests.utils.select_proxy(target, proxies)


_SOCKS_HELP = "SOCKS proxies need the socks extra: pip install 'riptide-sync[socks]'"


def check_proxy_support(proxy: str | None) -> None:
    """Fail before any network I/O when ``proxy`` is a SOCKS URL and the libraries it
    needs (PySocks for requests, python-socks for websocket-client) are missing.

    Raises:
        ConfigError: naming the proxy, what is missing, and what to install.
    """
    if not proxy or not urlsplit(proxy).scheme.lower().startswith("socks"):
        return
    # PySocks (module "socks") serves urllib3.contrib.socks; python-socks serves websocket-client.
    missing = [name for module, name in (("socks", "PySocks"), ("python_socks", "python-socks"))
               if not _importable(module)]
    if missing:
        raise ConfigError(f"proxy {_redact(proxy)!r} is a SOCKS proxy, but {' and '.join(missing)} "
                          f"{'is' if len(missing) == 1 else 'are'} not installed. {_SOCKS_HELP}")


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _redact(proxy: str) -> str:
    """The proxy URL without its password (secrets never in a message)."""
    parts = urlsplit(proxy)
    if parts.password is None:
        return proxy
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class _Session(requests.Session):
    """A Session whose TLS and proxy choices are the client's, not the environment's."""

    riptide_config: ClientConfig

    def merge_environment_settings(
        self, url: str, proxies: dict[str, str] | None, stream: bool | None, verify: Any, cert: Any,
    ) -> dict[str, Any]:
        # requests would let REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE replace session.verify and
        # would ignore NO_PROXY for session.proxies: the client's rules apply instead, so
        # requests' own reading of the environment (three walks of os.environ per call,
        # ~0.5 ms: 5 us per result at 100 URLs a request) is skipped.
        proxy = proxy_for(self.riptide_config, str(url))
        return {
            "proxies": {"http": proxy, "https": proxy} if proxy else {},
            "stream": requests.sessions.merge_setting(stream, self.stream),
            "verify": self.verify,
            "cert": requests.sessions.merge_setting(cert, self.cert),
        }

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
    TLS verification (:func:`resolve_verify` of ``config.verify``) and proxies
    (:func:`proxy_for`: ``config.proxy``, else the environment, never for a ``NO_PROXY``
    host). The caller owns the session and closes it.
    """
    check_proxy_support(config.proxy)
    session = _Session()
    session.riptide_config = config
    # Waits for headers that close() can end and that have an overall deadline (wakeable.py).
    adapter = WakeableAdapter(pool_maxsize=POOL_MAXSIZE)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers.update(config.headers)
    session.verify = resolve_verify(config.verify)
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
        if isinstance(adapter, WakeableAdapter):
            adapter.forget_waits_after_fork()
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
