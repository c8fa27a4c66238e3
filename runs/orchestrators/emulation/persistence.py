"""Keeping an estate in a JSON file: written atomically after every change, resumed by a
later emulator of the same kind and seed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

# Bump when a saved estate can no longer be read by this code: older files then start afresh.
STATE_FORMAT = 1
logger = logging.getLogger(__name__)


def write_atomically(path: Path, payload: bytes) -> None:
    """Write to a temporary file beside `path`, then rename it over `path`: a reader (or a
    process killed mid-write) sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(payload)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


@dataclass(frozen=True)
class Resumption:
    """What `persist` found: a saved estate it resumed, or a reason to start a new one."""

    resumed: bool
    message: str

    def __str__(self) -> str:
        return self.message


def _rng_state(saved: Any) -> tuple[Any, ...]:
    """random.Random.getstate() comes back from JSON as lists; setstate wants tuples."""
    version, internal, gauss = saved
    return (version, tuple(internal), gauss)


class EstatePersistence:
    """Saving the estate to a JSON file and resuming it; part of EmulatorApp."""

    # Saving and resuming --------------------------------------------------------------------

    def mark_changed(self) -> None:
        """Something was created or changed that the clock alone cannot derive again."""
        self._dirty = True

    def persist(self, path: Path, *, every: float = 2.0) -> Resumption:
        """Resume the estate saved at `path` if it is this emulator's, then keep saving it there
        (after every change, before the answer that reveals it, and every `every` seconds)."""
        with self.lock:
            note = self._resume(path)
            self.state_path = path
            self.save()
        if every > 0 and self._saver is None:
            self._stop_saving.clear()
            self._saver = threading.Thread(
                target=self._save_every, args=(every,), daemon=True, name=f"save-{self.kind}"
            )
            self._saver.start()
        return note

    def _resume(self, path: Path) -> Resumption:
        fresh = f"starting a new {self.kind} estate from seed {self.seed}"
        try:
            saved = json.loads(path.read_text())
        except FileNotFoundError:
            return Resumption(False, f"No saved {self.kind} estate at {path}: {fresh}.")
        except (OSError, ValueError) as exc:
            return Resumption(
                False, f"The saved {self.kind} estate at {path} cannot be read ({exc}): {fresh}."
            )
        if not isinstance(saved, dict):
            saved = {}
        found = {key: saved.get(key) for key in ("format", "kind", "seed")}
        wanted = {"format": STATE_FORMAT, "kind": self.kind, "seed": self.seed}
        mismatch = [
            f"{key} {found[key]!r} (not {wanted[key]!r})"
            for key in wanted
            if found[key] != wanted[key]
        ]
        if mismatch:
            return Resumption(
                False, f"The saved estate at {path} has {', '.join(mismatch)}: {fresh}."
            )
        try:
            saved_at = datetime.fromisoformat(saved["saved_at"])
            self.restore(saved["estate"])
            self.rng.setstate(_rng_state(saved["rng"]))
        except (AttributeError, IndexError, KeyError, TypeError, ValueError) as exc:
            self.reset()  # whatever the half-read file left behind goes
            return Resumption(
                False, f"The saved {self.kind} estate at {path} is damaged ({exc!r}): {fresh}."
            )
        # Time never runs backwards for an estate: a stepped clock resumes where it was.
        behind = (saved_at - self.now()).total_seconds()
        if behind > 0:
            self.clock.step(behind)
        self.resumed(self.now())
        self.advance(self.now())
        summary = self.describe()
        return Resumption(
            True,
            f"Resumed the {self.kind} estate saved at {saved['saved_at']} from {path}"
            + (f" ({summary})." if summary else "."),
        )

    def save(self) -> None:
        """Write the estate to `state_path` (if persisting), atomically."""
        with self.lock:
            if self.state_path is None:
                return
            payload = {
                "format": STATE_FORMAT,
                "kind": self.kind,
                "seed": self.seed,
                "saved_at": self.now().isoformat(),
                "options": {"history": self.history, "pace": self.pace, "autorun": self.autorun},
                "rng": self.rng.getstate(),
                "estate": self.estate(),
            }
            # Written under the lock, so a newer save can never be overtaken by an older one.
            write_atomically(self.state_path, json.dumps(payload, separators=(",", ":")).encode())
            self._dirty = False

    def _save_if_changed(self) -> None:
        if self._dirty and self.state_path is not None:
            try:
                self.save()
            except OSError:
                logger.exception("could not save the %s estate to %s", self.kind, self.state_path)

    def _save_every(self, seconds: float) -> None:
        while not self._stop_saving.wait(seconds):
            with self.lock:
                # Let schedules start what is due even when nobody asks, and keep that too.
                self.advance(self.now())
                self._save_if_changed()

    def close(self) -> None:
        """Stop saving in the background, after one last save."""
        self._stop_saving.set()
        if self._saver is not None:
            self._saver.join(timeout=5)
            self._saver = None
        if self.state_path is not None:
            self.save()
