"""The emulator clock: real time at a configurable speed, paused and stepped on demand."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any


class Clock:
    """Real time at a configurable speed; it can be paused and stepped."""

    def __init__(self, *, start: datetime | None = None, speed: float = 1.0) -> None:
        self._lock = threading.Lock()
        self._base = start or datetime.now(UTC)
        self._anchor = time.monotonic()
        self.speed = speed
        self.paused = False

    def now(self) -> datetime:
        with self._lock:
            if self.paused:
                return self._base
            elapsed = (time.monotonic() - self._anchor) * self.speed
            return self._base + timedelta(seconds=elapsed)

    def _rebase(self) -> None:
        if not self.paused:
            elapsed = (time.monotonic() - self._anchor) * self.speed
            self._base += timedelta(seconds=elapsed)
        self._anchor = time.monotonic()

    def pause(self) -> None:
        with self._lock:
            self._rebase()
            self.paused = True

    def resume(self) -> None:
        with self._lock:
            self._rebase()
            self.paused = False

    def step(self, seconds: float) -> None:
        with self._lock:
            self._rebase()
            self._base += timedelta(seconds=seconds)

    def as_dict(self) -> dict[str, Any]:
        return {"now": self.now().isoformat(), "paused": self.paused, "speed": self.speed}
