"""`Lazy`: a process-wide object built on first use, exactly once, thread-safe."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Lazy(Generic[T]):
    """Holds `factory()`, called on the first `get()` only.

    The call happens under a lock, so concurrent first calls share one object (the sandbox's uid
    slots, for one, must never be handed out by two allocators).
    """

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._value: T | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        with self._lock:
            if self._value is None:
                self._value = self._factory()
            return self._value
