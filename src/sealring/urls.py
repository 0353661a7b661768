"""URL rules shared by every layer.

:func:`is_loopback_host` is the one test for "plain http is allowed here because it never leaves
the machine" (RFC 8252 §8.3, RFC 8414 §2's https requirement relaxed for development).
"""

from __future__ import annotations

import ipaddress

__all__ = ["is_loopback_host"]


def is_loopback_host(host: str) -> bool:
    """``localhost`` or a loopback IP literal (``127.0.0.0/8``, ``::1``; brackets allowed)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
