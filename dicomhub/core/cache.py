"""A small thread-safe LRU cache bounded by total size in bytes.

Used for answers derived from immutable content (a stored file never changes under
the same attachment UUID), so entries never need invalidation: they just age out.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable


class ByteLRU:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[Hashable, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get_or_compute(self, key: Hashable, compute: Callable[[], bytes]) -> bytes:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                return found
        value = compute()
        if len(value) * 4 > self.max_bytes:  # too big to be worth keeping
            return value
        with self._lock:
            if key not in self._items:
                self._items[key] = value
                self._size += len(value)
                while self._size > self.max_bytes and self._items:
                    _, old = self._items.popitem(last=False)
                    self._size -= len(old)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._size = 0
