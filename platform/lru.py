"""A bounded, thread-safe mapping that forgets the least recently used entry first.

Process caches keyed by tenant or table use it so that a long-lived server holds the
working set, not everything it ever served; an evicted entry is simply built again.

Entries of very different sizes (a compiled 90-column order table holds ~0.5 MB, a
5-column lookup table a tenth of it) can also be bounded by a total weight: ``weigh(entry)``
gives an entry's weight and the least recently used entries go while the total is above
``maxweight`` (the newest entry always stays)."""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Generic, Hashable, TypeVar

V = TypeVar("V")


class LruCache(Generic[V]):
    def __init__(self, maxsize: int, *, weigh: Callable[[V], int] | None = None, maxweight: int | None = None,
                 on_evict: Callable[[V], None] | None = None):
        self._lock = threading.Lock()
        #: called with each entry that ``maxsize`` / ``maxweight`` pushed out (under the lock: keep it short)
        self.on_evict = on_evict
        self._data: OrderedDict[Hashable, V] = OrderedDict()
        self._weigh = weigh
        self._weights: dict[Hashable, int] = {}
        self.weight = 0
        self._maxweight = None if maxweight is None else max(1, int(maxweight))
        self.maxsize = maxsize

    @property
    def maxweight(self) -> int | None:
        return self._maxweight

    @maxweight.setter
    def maxweight(self, n: int | None) -> None:
        with self._lock:
            self._maxweight = None if n is None else max(1, int(n))
            self._trim()

    @property
    def maxsize(self) -> int:
        return self._maxsize

    @maxsize.setter
    def maxsize(self, n: int) -> None:
        with self._lock:
            self._maxsize = max(1, int(n))
            self._trim()

    def _trim(self) -> None:
        data = self._data
        while len(data) > self._maxsize or (self._maxweight is not None and self.weight > self._maxweight and len(data) > 1):
            key, value = data.popitem(last=False)
            self.weight -= self._weights.pop(key, 0)
            if self.on_evict is not None:
                self.on_evict(value)

    def _store(self, key, value) -> None:
        self._data[key] = value
        if self._weigh is not None:
            w = int(self._weigh(value))
            self.weight += w - self._weights.get(key, 0)
            self._weights[key] = w

    def __len__(self) -> int:
        return len(self._data)

    def values(self) -> list[V]:
        with self._lock:
            return list(self._data.values())

    def get(self, key, default=None):
        with self._lock:
            value = self._data.get(key, _MISSING)
            if value is _MISSING:
                return default
            self._data.move_to_end(key)
            return value

    def put(self, key, value: V) -> None:
        with self._lock:
            self._store(key, value)
            self._data.move_to_end(key)
            self._trim()

    def get_or_put(self, key, usable: Callable[[V], bool], make: Callable[[], V]) -> V:
        """The entry under KEY if ``usable(entry)``, else a new one from ``make()`` put in its
        place; atomic, so two threads missing at once share one new entry."""
        with self._lock:
            value = self._data.get(key, _MISSING)
            if value is _MISSING or not usable(value):
                value = make()
                self._store(key, value)
            self._data.move_to_end(key)
            self._trim()
            return value

    def pop_if(self, key, matches: Callable[[V], bool]) -> V | None:
        """Removes the entry under KEY if ``matches(entry)``; returns it (None otherwise)."""
        with self._lock:
            value = self._data.get(key, _MISSING)
            if value is not _MISSING and matches(value):
                del self._data[key]
                self.weight -= self._weights.pop(key, 0)
                return value
            return None

    def clear(self) -> list[V]:
        """Empties the cache; returns what it held."""
        with self._lock:
            values = list(self._data.values())
            self._data.clear()
            self._weights.clear()
            self.weight = 0
            return values


_MISSING = object()
