"""The result cache (docs/protocol.md §5.3 keys; ``cache_mode`` semantics of §5.2).

Entries map a cache key to the JSON of an ExtractedDoc. Only successful fetches with a
2xx origin status are stored. The SQLite variant survives restarts.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from typing import Any

import orjson


def cache_key(cache_mode: str, url: str) -> str:
    """Return the standard pipeline's key, ``riptide:v1:<cache_mode>:<hex>`` (§5.3)."""
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    return f"riptide:v1:{cache_mode}:{digest}"


class MemoryCache:
    """A dict-backed cache; thread-safe enough for one event loop plus a test thread."""

    def __init__(self) -> None:
        self._data: dict[str, bytes] = {}

    def get(self, key: str) -> dict[str, Any] | None:
        """Return the cached document for ``key``, or ``None``."""
        raw = self._data.get(key)
        return None if raw is None else orjson.loads(raw)

    def put(self, key: str, document: dict[str, Any]) -> None:
        """Store ``document`` under ``key``."""
        self._data[key] = orjson.dumps(document)

    def __len__(self) -> int:
        return len(self._data)

    def close(self) -> None:
        """Nothing to release."""


class SqliteCache(MemoryCache):
    """A cache in a SQLite file, so entries survive a server restart."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("CREATE TABLE IF NOT EXISTS cache (key TEXT PRIMARY KEY, doc BLOB NOT NULL)")

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT doc FROM cache WHERE key = ?", (key,)).fetchone()
        return None if row is None else orjson.loads(row[0])

    def put(self, key: str, document: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO cache (key, doc) VALUES (?, ?)",
                             (key, orjson.dumps(document)))

    def __len__(self) -> int:
        with self._lock:
            count: int = self._db.execute("SELECT COUNT(*) FROM cache").fetchone()[0]
            return count

    def close(self) -> None:
        """Close the database file."""
        with self._lock:
            self._db.close()


def open_cache(path: str | None) -> MemoryCache:
    """Return a SQLite cache at ``path``, or an in-memory one when ``path`` is ``None``."""
    return MemoryCache() if path is None else SqliteCache(path)
