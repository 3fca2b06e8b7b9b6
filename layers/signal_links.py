"""Signal → slot links made together and cut together.

A room that listens to a layer, the project or a widget keeps its links in one
:class:`SignalLinks`, so what it connects and what it disconnects can never drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable


class SignalLinks:
    """The (signal, slot) pairs one owner connected; :meth:`cut` disconnects every one of them."""

    def __init__(self, pairs: Iterable[tuple[object, Callable]] = ()):
        self._pairs: list[tuple[object, Callable]] = []
        self.link(pairs)

    def link(self, pairs: Iterable[tuple[object, Callable]]) -> None:
        """Connect each ``signal`` to its ``slot`` and remember the pair."""
        for signal, slot in pairs:
            signal.connect(slot)
            self._pairs.append((signal, slot))

    def cut(self) -> None:
        """Disconnect every remembered pair; a pair whose object is gone already is skipped."""
        pairs, self._pairs = self._pairs, []
        for signal, slot in pairs:
            try:
                signal.disconnect(slot)
            except (TypeError, RuntimeError):  # already disconnected, or its C++ object deleted
                pass

    def __len__(self) -> int:
        return len(self._pairs)
