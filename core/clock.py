"""The one clock the engine counts its time limits on, for Build and Rebalance alike."""

from __future__ import annotations

import time
from typing import Callable


class Clock:
    """Seconds read from a swappable source.

    Wall-clock seconds (``time.monotonic``) unless ``source`` is replaced: the benchmark counts
    CPU seconds (``time.process_time``) to measure what the search needs on a core of its own,
    and a test may put in a clock of its own. Every deadline of the engine is a reading of this
    clock plus some seconds.
    """

    def __init__(self, source: Callable[[], float] = time.monotonic):
        self.source = source

    def __call__(self) -> float:
        return self.source()


#: The engine's clock (``core.engine.CLOCK`` is the same object).
CLOCK = Clock()
