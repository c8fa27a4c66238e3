"""Helpers for vendor emulators: epoch milliseconds and GUIDs drawn from the estate's RNG."""

from __future__ import annotations

import random
from datetime import datetime


def epoch_ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def seeded_uuid(rng: random.Random) -> str:
    """A GUID drawn from the estate's RNG, so the same seed gives the same ids."""
    value = rng.getrandbits(128)
    hexed = f"{value:032x}"
    return f"{hexed[:8]}-{hexed[8:12]}-4{hexed[13:16]}-a{hexed[17:20]}-{hexed[20:32]}"
