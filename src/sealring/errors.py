"""The one exception hierarchy every Sealring layer raises.

Callers switch on :attr:`SealringError.code`, a stable machine-readable string, never on the
message text.  The message is meant for people and never contains secrets or key material.
"""

from __future__ import annotations

__all__ = ["SealringError"]


class SealringError(Exception):
    """Base of every error Sealring raises on purpose.

    Subclasses set a class-level ``code``; an instance may override it.
    """

    code: str = "sealring_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"
