"""The one fake clock of the suite: time moves only when a test says so."""

from __future__ import annotations

#: The instant every test starts at unless it says otherwise (2027-01-15, a whole second).
T0 = 1_800_000_000.0


class FakeClock:
    """A ``Callable[[], float]`` for every ``clock=`` parameter; nothing sleeps."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
