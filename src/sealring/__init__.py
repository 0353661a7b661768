"""Sealring: a JWT authorization server that guards its keys, and a strict verifier toolkit."""

from __future__ import annotations

from sealring.errors import SealringError

__all__ = ["SealringError", "__version__"]

__version__ = "0.1.0"
