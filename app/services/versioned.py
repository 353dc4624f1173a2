"""Values read from the database, reused while the data version stands."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from sqlalchemy.engine import URL
from sqlmodel import Session

from app.services import audit

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

_caches: list[VersionedCache[object, object]] = []


class VersionedCache(Generic[K, V]):
    """Values computed from the database, each kept with the data version it was read at.

    Every audited write moves the version, so a value served is never older than the data the
    asking transaction can see. A value read by a transaction that has itself written is not
    kept: that version is not yet everyone's, and a rollback would leave it to other data.
    Nor is a None: what is missing may be added without an audit (the demo seed's groups).
    """

    def __init__(self, *, size: int = 20_000) -> None:
        self.size = size
        self._items: OrderedDict[tuple[URL, K], tuple[int, V]] = OrderedDict()
        self._lock = threading.Lock()
        _caches.append(self)  # type: ignore[arg-type]

    def get_or_build(self, session: Session, key: K, build: Callable[[], V]) -> V:
        """The value for `key` read at the session's data version, else `build()` (kept
        unless None)."""
        version = audit.data_version(session)
        slot = (session.get_bind().url, key)
        with self._lock:
            item = self._items.get(slot)
            if item is not None and item[0] == version:
                self._items.move_to_end(slot)
                return item[1]
        value = build()
        if value is not None and not audit.wrote(session):
            with self._lock:
                self._items[slot] = (version, value)
                self._items.move_to_end(slot)
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        """Forget every value."""
        with self._lock:
            self._items.clear()


def clear_all() -> None:
    """Forget every cached value (a database was reset under the process, as tests do)."""
    for cache in _caches:
        cache.clear()
