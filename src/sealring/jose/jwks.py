"""JWK Sets parsed for verification (RFC 7517 §5).

The set is what decides which keys may verify: members that carry private parts, symmetric keys
and duplicate ``kid``s make the whole document suspect and it is refused. Keys this
implementation cannot use (unknown ``kty``/``crv``, ``use: enc``, unsupported ``alg``) are skipped
with a reason, as RFC 7517 §5 asks of implementations that meet keys they do not understand.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from sealring.jose import _json
from sealring.jose.errors import InvalidKey, InvalidKeySet, MalformedToken
from sealring.jose.jwk import JWK, PRIVATE_MEMBERS

__all__ = ["DEFAULT_MAX_KEYS", "DEFAULT_MAX_SIZE", "KeySet"]

DEFAULT_MAX_SIZE = 512 * 1024
DEFAULT_MAX_KEYS = 100
_SIGNING_OPS = frozenset({"verify", "sign"})


class KeySet:
    """An immutable set of public verification keys, indexed by ``kid``."""

    __slots__ = ("_by_kid", "keys", "kids", "skipped")

    keys: tuple[JWK, ...]
    #: The key ids, for membership tests without a method call.
    kids: frozenset[str]
    skipped: tuple[str, ...]
    _by_kid: dict[str, JWK]

    def __init__(self, keys: tuple[JWK, ...], skipped: tuple[str, ...] = ()) -> None:
        by_kid: dict[str, JWK] = {}
        for key in keys:
            if key.is_private:
                raise InvalidKeySet("a verification key set must not hold private keys")
            if key.kid in by_kid:
                raise InvalidKeySet("duplicate 'kid' in the key set")
            by_kid[key.kid] = key
        object.__setattr__(self, "keys", keys)
        object.__setattr__(self, "skipped", skipped)
        object.__setattr__(self, "_by_kid", by_kid)
        object.__setattr__(self, "kids", frozenset(by_kid))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("KeySet is immutable")

    @classmethod
    def from_dict(cls, doc: Mapping[str, object], *, max_keys: int = DEFAULT_MAX_KEYS) -> KeySet:
        """Parse a ``{"keys": [...]}`` document."""
        if not isinstance(doc, Mapping):
            raise InvalidKeySet("JWK Set is not a JSON object")
        members = doc.get("keys")
        if not isinstance(members, list):
            raise InvalidKeySet("JWK Set has no 'keys' array")
        if len(members) > max_keys:
            raise InvalidKeySet(f"JWK Set has more than {max_keys} keys")
        keys: list[JWK] = []
        skipped: list[str] = []
        for index, member in enumerate(members):
            where = f"key {index}"
            if not isinstance(member, Mapping):
                skipped.append(f"{where}: not a JSON object")
                continue
            kid = member.get("kid")
            if isinstance(kid, str):
                where = f"key {index} (kid {kid[:64]!r})"
            kty = member.get("kty")
            if kty == "oct":
                raise InvalidKeySet(f"{where}: symmetric keys are not allowed in a JWK Set")
            if any(name in member for name in PRIVATE_MEMBERS):
                raise InvalidKeySet(f"{where}: carries private key members")
            if kty not in ("RSA", "EC", "OKP"):
                skipped.append(f"{where}: unsupported kty")
                continue
            if member.get("use", "sig") != "sig":
                skipped.append(f"{where}: use is not 'sig'")
                continue
            ops = member.get("key_ops")
            if (
                isinstance(ops, list)
                and all(isinstance(op, str) for op in ops)
                and not _SIGNING_OPS.intersection(ops)
            ):
                skipped.append(f"{where}: key_ops does not allow verification")
                continue
            try:
                keys.append(JWK.from_dict(member))
            except InvalidKey as exc:
                skipped.append(f"{where}: {exc.message}")
        return cls(tuple(keys), tuple(skipped))

    @classmethod
    def from_json(
        cls,
        text: str | bytes,
        *,
        max_size: int = DEFAULT_MAX_SIZE,
        max_keys: int = DEFAULT_MAX_KEYS,
    ) -> KeySet:
        try:
            doc = _json.loads_object(text, max_size=max_size, what="JWK Set")
        except MalformedToken as exc:
            raise InvalidKeySet(f"JWK Set refused: {exc.message}") from exc
        return cls.from_dict(doc, max_keys=max_keys)

    @classmethod
    def of(cls, *keys: JWK) -> KeySet:
        """A set of the public halves of ``keys``."""
        return cls(tuple(key.public() for key in keys))

    def get(self, kid: str) -> JWK | None:
        return self._by_kid.get(kid)

    def to_dict(self) -> dict[str, object]:
        return {"keys": [key.to_dict() for key in self.keys]}

    def __len__(self) -> int:
        return len(self.keys)

    def __iter__(self) -> Iterator[JWK]:
        return iter(self.keys)

    def __contains__(self, kid: object) -> bool:
        return isinstance(kid, str) and kid in self._by_kid

    def __repr__(self) -> str:
        return f"KeySet(kids={list(self._by_kid)!r}, skipped={len(self.skipped)})"
