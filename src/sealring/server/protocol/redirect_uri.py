"""Redirect URIs: what a client may register and how a requested one is matched.

Registration (RFC 6749 §3.1.2, RFC 8252 §7, RFC 9700 §2.6), decided here:

* An absolute URI of printable ASCII, without a fragment (RFC 6749 §3.1.2), without userinfo
  (``https://good@evil``: parsers disagree about the host), at most 2000 characters.
* ``https`` for every client.
* ``http`` only for a native client, and only with a loopback IP literal host, ``127.0.0.1`` or
  ``[::1]`` (RFC 9700 §2.6: no ``http`` redirect URI except a native client's loopback
  interface redirection, RFC 8252 §7.3).
  ``http://localhost`` is refused: RFC 8252 §8.3 calls it NOT RECOMMENDED because the name may
  resolve to something other than the loopback interface (a hosts file, a resolver) and a
  firewall may treat it differently; the IP literal has neither problem.
* A private-use scheme (RFC 8252 §7.1) for a native client, when it contains a ``.`` as a reverse
  domain name does (``com.example.app:/cb``); this also keeps out ``javascript:``, ``data:`` and
  ``file:``.

Matching (RFC 9700 §2.1 and §4.1.3, RFC 6749 §3.1.2.3): the requested value must equal a
registered one character for character: no normalisation, no trailing-slash or case folding, no
wildcards.  The only exception is RFC 8252 §7.3's: for a native client, a registered ``http``
loopback IP URI matches a request that differs from it only in the port, because the app learns
its ephemeral port at run time.  RFC 9700 §2.1 words this as "port numbers in localhost
redirection URIs of native apps"; Sealring reads it as RFC 8252 §7.3 defines it, for the IP
literals only.  A ``localhost`` URI is matched exactly (clients registered before these rules
may still hold one).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final
from urllib.parse import urlsplit

from sealring.errors import SealringError

__all__ = [
    "LOOPBACK_HOSTS",
    "MAX_REDIRECT_URI_LENGTH",
    "InvalidRedirectUri",
    "check_redirect_uri",
    "match_redirect_uri",
]

MAX_REDIRECT_URI_LENGTH: Final = 2000
LOOPBACK_HOSTS: Final = ("127.0.0.1", "[::1]")

# RFC 3986 §3.1 scheme, then anything printable except space; further checks below.
_ABSOLUTE: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[\x21-\x7e]+\Z")
# A loopback IP redirect URI, split so that only the port may differ.  The port, if any, is
# 1-65535 written without leading zeros, so "127.0.0.1:080" cannot alias "127.0.0.1:80".
_LOOPBACK: Final = re.compile(
    r"http://(?P<host>127\.0\.0\.1|\[::1\])"
    r"(?::(?P<port>[1-9][0-9]{0,4}))?"
    r"(?P<rest>[/?][\x21-\x7e]*)?\Z"
)


class InvalidRedirectUri(SealringError):
    """A redirect URI a client may not register (RFC 7591 §3.2.2 ``invalid_redirect_uri``)."""

    code = "invalid_redirect_uri"


def _is_loopback_ip_uri(uri: str) -> bool:
    m = _LOOPBACK.match(uri)
    return m is not None and (m["port"] is None or int(m["port"]) <= 65535)


def check_redirect_uri(uri: str, *, native: bool) -> str:
    """The registration rules of the module docstring; returns ``uri`` unchanged or raises."""
    if len(uri) > MAX_REDIRECT_URI_LENGTH or not _ABSOLUTE.match(uri):
        raise InvalidRedirectUri(
            "a redirect URI must be an absolute URI of printable ASCII without spaces"
        )
    if "#" in uri:
        raise InvalidRedirectUri("a redirect URI must not have a fragment (RFC 6749 §3.1.2)")
    if "\\" in uri:
        raise InvalidRedirectUri("a redirect URI must not contain a backslash")
    try:
        parts = urlsplit(uri)
        host = parts.hostname
    except ValueError:  # an unbalanced "[" in the authority
        raise InvalidRedirectUri("a redirect URI must have a valid host") from None
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        # Lower case only: matching is exact, so "HTTPS://" would be a second spelling.
        if not uri.startswith(scheme + "://") or not host:
            raise InvalidRedirectUri(
                "an http(s) redirect URI needs a lower-case scheme, '//' and a host"
            )
        if "@" in parts.netloc:
            raise InvalidRedirectUri("a redirect URI must not carry userinfo ('@')")
        if scheme == "https":
            return uri
        if not native:
            raise InvalidRedirectUri(
                "http redirect URIs are only for native clients on a loopback IP (RFC 9700)"
            )
        if not _is_loopback_ip_uri(uri):
            raise InvalidRedirectUri(
                "an http redirect URI must use 127.0.0.1 or [::1] (RFC 8252 §7.3; "
                "'localhost' is not accepted, RFC 8252 §8.3)"
            )
        return uri
    if native and "." in scheme:
        return uri
    raise InvalidRedirectUri(
        "a redirect URI must use https, or for a native client a loopback http URI or a "
        "reverse-domain private-use scheme (RFC 8252 §7.1)"
    )


def _without_port(uri: str) -> str | None:
    """The loopback IP URI with its port removed, or None if ``uri`` is not one."""
    m = _LOOPBACK.match(uri)
    if m is None or (m["port"] is not None and int(m["port"]) > 65535):
        return None
    return f"http://{m['host']}{m['rest'] or ''}"


def match_redirect_uri(requested: str, registered: Iterable[str], *, native: bool) -> str | None:
    """The registered URI ``requested`` matches, or None (RFC 9700 §4.1.3, RFC 8252 §7.3).

    Returns the *requested* value when it matches: the client gets its redirect at the port it
    asked for.
    """
    candidates = tuple(registered)
    if requested in candidates:
        return requested
    if not native:
        return None
    bare = _without_port(requested)
    if bare is None:
        return None
    for uri in candidates:
        if _without_port(uri) == bare:
            return requested
    return None
