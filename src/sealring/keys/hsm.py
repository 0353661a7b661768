"""Signing keys on a PKCS#11 token (tested against SoftHSM2), through ``python-pkcs11``.

Keys are generated on the token as sensitive and non-extractable; signing happens on the token;
the database keeps only the public JWK and the object's id. Every object's label names the
installation that made it (``<prefix><installation id>-<id>``), and an object is only ever
destroyed under a label this installation wrote (issue 10: a token may be shared). The PIN comes
from ``SEALRING_HSM_PIN`` or ``SEALRING_HSM_PIN_FILE``, never from the command line, and is
never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from sealring.jose.jwk import JWK
from sealring.keys.errors import HSMError, KeyConfigError

__all__ = ["HSM", "HSMConfig", "HSMSigner"]

_CURVES: dict[str, tuple[str, ec.EllipticCurve, Any]] = {
    "ES256": ("secp256r1", ec.SECP256R1(), hashlib.sha256),
    "ES384": ("secp384r1", ec.SECP384R1(), hashlib.sha384),
    "ES512": ("secp521r1", ec.SECP521R1(), hashlib.sha512),
}
_RSA_HASH = {"256": "SHA256", "384": "SHA384", "512": "SHA512"}
_PSS_SALT = {"256": 32, "384": 48, "512": 64}
_ED25519_OID = "1.3.101.112"


@dataclass(frozen=True)
class HSMConfig:
    """Where the token is. The PIN is kept out of ``repr``."""

    module: str
    token_label: str
    pin: str = field(repr=False)
    label_prefix: str = "sealring-"
    rsa_bits: int = 2048

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> HSMConfig | None:
        """``SEALRING_HSM_MODULE``, ``_TOKEN``, ``_PIN`` or ``_PIN_FILE``, ``_LABEL_PREFIX``."""
        env = os.environ if environ is None else environ
        module = env.get("SEALRING_HSM_MODULE")
        if not module:
            return None
        token = env.get("SEALRING_HSM_TOKEN")
        if not token:
            raise KeyConfigError("SEALRING_HSM_MODULE is set but SEALRING_HSM_TOKEN is not")
        pin = env.get("SEALRING_HSM_PIN")
        if not pin and env.get("SEALRING_HSM_PIN_FILE"):
            try:
                pin = Path(env["SEALRING_HSM_PIN_FILE"]).read_text().strip()
            except OSError as exc:
                raise KeyConfigError(
                    f"cannot read SEALRING_HSM_PIN_FILE: {type(exc).__name__}"
                ) from None
        if not pin:
            raise KeyConfigError("the HSM PIN is missing: set SEALRING_HSM_PIN or _PIN_FILE")
        prefix = env.get("SEALRING_HSM_LABEL_PREFIX", "sealring-")
        return cls(module=module, token_label=token, pin=pin, label_prefix=prefix)


@dataclass
class _SharedSession:
    session: Any
    lock: threading.Lock
    pin_digest: bytes
    users: int = 0


# PKCS#11 login state belongs to the whole process (C_Logout on any session logs every session
# out), so all HSM objects of one process share one logged-in session per token.
_SESSIONS: dict[tuple[str, str], _SharedSession] = {}
_SESSIONS_LOCK = threading.Lock()


class HSM:
    """A logged-in read/write session on the token, shared by this process's signers."""

    def __init__(self, config: HSMConfig) -> None:
        self.config = config
        self._handles: dict[str, Any] = {}
        self._key = (config.module, config.token_label)
        with _SESSIONS_LOCK:
            shared = _SESSIONS.get(self._key)
            pin_digest = hashlib.sha256(config.pin.encode()).digest()
            if shared is None:
                shared = _SharedSession(_login(config), threading.Lock(), pin_digest)
                _SESSIONS[self._key] = shared
            elif not hmac.compare_digest(shared.pin_digest, pin_digest):
                # Reusing the logged-in session must not skip the PIN check.
                raise HSMError(f"cannot open PKCS#11 token {config.token_label!r}: PinIncorrect")
            shared.users += 1
        self._shared: _SharedSession | None = shared
        self._lock = shared.lock

    def close(self) -> None:
        with _SESSIONS_LOCK:
            shared, self._shared = self._shared, None
            self._handles.clear()
            if shared is None:
                return
            shared.users -= 1
            if shared.users == 0:
                del _SESSIONS[self._key]
                with shared.lock:
                    shared.session.close()

    def label(self, owner: str, ref: str) -> str:
        """The label of the objects ``owner`` (an installation id) makes under id ``ref``."""
        return f"{self.config.label_prefix}{owner}-{ref}"

    def generate(self, alg: str, owner: str) -> tuple[str, JWK]:
        """Generate a key pair for ``alg`` on the token, labelled as ``owner``'s; return
        ``(ref, public JWK)``."""
        from pkcs11 import Attribute, KeyType, MechanismFlag
        from pkcs11.util.ec import encode_named_curve_parameters

        ref = secrets.token_hex(16)
        ident = bytes.fromhex(ref)
        label = self.label(owner, ref)
        private_template = {
            Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False,
            Attribute.PRIVATE: True,
            Attribute.TOKEN: True,
        }
        options = {
            "id": ident,
            "label": label,
            "store": True,
            "capabilities": MechanismFlag.SIGN | MechanismFlag.VERIFY,
            "private_template": private_template,
        }
        with self._lock:
            session = self._open()
            try:
                if alg in _CURVES or alg == "EdDSA":
                    key_type, curve = (
                        (KeyType.EC, _CURVES[alg][0])
                        if alg in _CURVES
                        else (KeyType.EC_EDWARDS, _ED25519_OID)
                    )
                    params = session.create_domain_parameters(
                        key_type,
                        {Attribute.EC_PARAMS: encode_named_curve_parameters(curve)},
                        local=True,
                    )
                    public, private = params.generate_keypair(**options)
                elif alg[:2] in ("RS", "PS"):
                    public, private = session.generate_keypair(
                        KeyType.RSA, self.config.rsa_bits, **options
                    )
                else:
                    raise HSMError(f"algorithm {alg} is not supported on the HSM")
            except HSMError:
                raise
            except Exception as exc:
                raise HSMError(
                    f"the token could not generate a {alg} key: {type(exc).__name__}"
                ) from None
            jwk = JWK.from_key(_public_key(alg, public), alg=alg)
            self._handles[ref] = private
        return ref, jwk

    def signer(self, ref: str, public: JWK) -> HSMSigner:
        return HSMSigner(self, ref, public)

    def sign(self, ref: str, alg: str, data: bytes) -> bytes:
        from pkcs11 import MGF, Mechanism

        with self._lock:
            private = self._private(ref)
            try:
                if alg in _CURVES:
                    # CKM_ECDSA over our own digest: the most widely supported mechanism; it
                    # returns r||s, which is what JWS wants.
                    digest = _CURVES[alg][2](data).digest()
                    return bytes(private.sign(digest, mechanism=Mechanism.ECDSA))
                if alg == "EdDSA":
                    return bytes(private.sign(data, mechanism=Mechanism.EDDSA))
                bits = alg[2:]
                hash_name = _RSA_HASH[bits]
                if alg.startswith("RS"):
                    mech = getattr(Mechanism, f"{hash_name}_RSA_PKCS")
                    return bytes(private.sign(data, mechanism=mech))
                mech = getattr(Mechanism, f"{hash_name}_RSA_PKCS_PSS")
                param = (getattr(Mechanism, hash_name), getattr(MGF, hash_name), _PSS_SALT[bits])
                return bytes(private.sign(data, mechanism=mech, mechanism_param=param))
            except Exception as exc:
                raise HSMError(
                    f"the token refused to sign with key {ref}: {type(exc).__name__}"
                ) from None

    def destroy(self, ref: str, labels: Collection[str]) -> int:
        """Destroy the objects (private and public key) with id ``ref`` whose label is one of
        ``labels``; returns how many. An object under any other label is left alone."""
        with self._lock:
            session = self._open()
            self._handles.pop(ref, None)
            doomed = [
                obj
                for obj in session.get_objects({_attr("ID"): bytes.fromhex(ref)})
                if obj[_attr("LABEL")] in labels
            ]
            for obj in doomed:
                obj.destroy()
        return len(doomed)

    def objects(self) -> dict[str, str]:
        """``{id: label}`` of the private keys on the token whose label has the configured
        prefix, whoever made them. Reads only."""
        from pkcs11 import Attribute, ObjectClass

        prefix = self.config.label_prefix
        found = {}
        with self._lock:
            session = self._open()
            for obj in session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY}):
                label = obj[Attribute.LABEL]
                if isinstance(label, str) and label.startswith(prefix):
                    found[bytes(obj[Attribute.ID]).hex()] = label
        return found

    def refs(self) -> set[str]:
        """Ids of the prefixed private keys on the token (:meth:`objects`)."""
        return set(self.objects())

    def _open(self) -> Any:
        if self._shared is None:
            raise HSMError("the HSM session is closed")
        return self._shared.session

    def _private(self, ref: str) -> Any:
        from pkcs11 import ObjectClass
        from pkcs11.exceptions import NoSuchKey

        handle = self._handles.get(ref)
        if handle is None:
            try:
                handle = self._open().get_key(
                    object_class=ObjectClass.PRIVATE_KEY, id=bytes.fromhex(ref)
                )
            except NoSuchKey:
                raise HSMError(f"key {ref} is not on the token") from None
            self._handles[ref] = handle
        return handle


def _login(config: HSMConfig) -> Any:
    import pkcs11

    try:
        lib = pkcs11.lib(config.module)
        token = lib.get_token(token_label=config.token_label)
        return token.open(rw=True, user_pin=config.pin)
    except pkcs11.PKCS11Error as exc:
        raise HSMError(
            f"cannot open PKCS#11 token {config.token_label!r}: {type(exc).__name__}"
        ) from None
    except (OSError, RuntimeError) as exc:
        raise HSMError(f"cannot load PKCS#11 module {config.module}: {exc}") from None


class HSMSigner:
    """A :class:`sealring.jose.jws.Signer` whose private key never leaves the token."""

    __slots__ = ("_hsm", "_public", "_ref")

    def __init__(self, hsm: HSM, ref: str, public: JWK) -> None:
        self._hsm, self._ref, self._public = hsm, ref, public

    @property
    def alg(self) -> str:
        return self._public.signing_algorithm()

    @property
    def kid(self) -> str:
        return self._public.kid

    def sign(self, signing_input: bytes) -> bytes:
        return self._hsm.sign(self._ref, self.alg, signing_input)

    def public_jwk(self) -> JWK:
        return self._public

    def __repr__(self) -> str:
        return f"HSMSigner(kid={self.kid!r}, alg={self.alg!r})"


def _attr(name: str) -> Any:
    from pkcs11 import Attribute

    return getattr(Attribute, name)


def _unwrap_point(value: bytes, size: int) -> bytes:
    """EC_POINT is a DER OCTET STRING around the point; some tokens give the bare point."""
    if len(value) == size:
        return value
    header = 2 if size < 0x80 else 3
    if len(value) == size + header and value[0] == 0x04:
        return value[header:]
    raise HSMError("the token returned an EC point of an unexpected length")


def _public_key(alg: str, public: Any) -> Any:
    from pkcs11 import Attribute

    if alg in _CURVES:
        curve = _CURVES[alg][1]
        size = 1 + 2 * ((curve.key_size + 7) // 8)
        point = _unwrap_point(bytes(public[Attribute.EC_POINT]), size)
        return ec.EllipticCurvePublicKey.from_encoded_point(curve, point)
    if alg == "EdDSA":
        raw = _unwrap_point(bytes(public[Attribute.EC_POINT]), 32)
        return ed25519.Ed25519PublicKey.from_public_bytes(raw)
    n = int.from_bytes(bytes(public[Attribute.MODULUS]), "big")
    e = int.from_bytes(bytes(public[Attribute.PUBLIC_EXPONENT]), "big")
    return rsa.RSAPublicNumbers(e, n).public_key()
