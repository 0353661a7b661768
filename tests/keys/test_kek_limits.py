"""The key-encryption key ring at its limits: AES-256 keys only, and the blob layout's minimum.

A KEK is exactly 32 bytes; a wrapped key is 0x01 || 12-byte nonce || ciphertext and 16-byte tag,
bound to its kid and alg (AAD), and any other blob fails as a wrong key would (``InvalidTag``).
"""

from __future__ import annotations

import base64
import os

import pytest
from cryptography.exceptions import InvalidTag

from sealring.keys.kek import KEKError, KEKRing

KEK = os.urandom(32)


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_a_kek_is_exactly_32_bytes(size: int) -> None:
    assert KEKRing([os.urandom(32)]).primary_id
    with pytest.raises(KEKError):
        KEKRing([os.urandom(size)])
    with pytest.raises(KEKError):
        KEKRing([os.urandom(32), os.urandom(size)])


def test_an_empty_ring_is_refused() -> None:
    with pytest.raises(KEKError):
        KEKRing([])
    with pytest.raises(KEKError):
        KEKRing.from_string(" , \n ")


def test_the_shortest_blob_is_the_empty_plaintext() -> None:
    ring = KEKRing([KEK])
    kek_id, blob = ring.encrypt(b"", kid="k", alg="ES256")
    assert len(blob) == 1 + 12 + 16
    assert ring.decrypt(blob, kid="k", alg="ES256", kek_id=kek_id) == b""
    with pytest.raises(InvalidTag):
        ring.decrypt(blob[:-1], kid="k", alg="ES256", kek_id=kek_id)


def test_a_blob_is_bound_to_its_kid_alg_and_format() -> None:
    ring = KEKRing([KEK])
    kek_id, blob = ring.encrypt(b"private key bytes", kid="k", alg="ES256")
    assert ring.decrypt(blob, kid="k", alg="ES256", kek_id=kek_id) == b"private key bytes"
    for kid, alg in (("k2", "ES256"), ("k", "ES384"), ("k\x00ES256", ""), ("", "k\x00ES256")):
        with pytest.raises(InvalidTag):
            ring.decrypt(blob, kid=kid, alg=alg, kek_id=kek_id)
    with pytest.raises(InvalidTag):
        ring.decrypt(b"\x02" + blob[1:], kid="k", alg="ES256", kek_id=kek_id)


def test_an_old_kek_still_decrypts_and_the_first_one_encrypts() -> None:
    old = KEKRing([KEK])
    _, blob = old.encrypt(b"secret", kid="k", alg="ES256")
    new_kek = os.urandom(32)
    ring = KEKRing.from_string(
        base64.b64encode(new_kek).decode() + ",\n" + base64.b64encode(KEK).decode()
    )
    assert ring.primary_id == KEKRing([new_kek]).primary_id
    assert ring.decrypt(blob, kid="k", alg="ES256") == b"secret"
    assert ring.decrypt(blob, kid="k", alg="ES256", kek_id="unknown") == b"secret"
    assert ring.decrypt(blob, kid="k", alg="ES256", kek_id=old.primary_id) == b"secret"
    kek_id, fresh = ring.encrypt(b"x", kid="k", alg="ES256")
    assert kek_id == ring.primary_id
    with pytest.raises(InvalidTag):
        old.decrypt(fresh, kid="k", alg="ES256")


def test_kek_text_must_be_base64() -> None:
    with pytest.raises(KEKError, match="#2"):
        KEKRing.from_string(base64.b64encode(KEK).decode() + ",not base64!")


def test_a_ring_never_shows_its_keys() -> None:
    ring = KEKRing([KEK])
    text = repr(ring)
    assert ring.primary_id in text
    assert base64.b64encode(KEK).decode() not in text
    assert KEK.hex() not in text


def test_every_blob_shorter_than_the_layout_fails_as_a_wrong_key_would() -> None:
    ring = KEKRing([KEK])
    _, blob = ring.encrypt(b"", kid="k", alg="ES256")
    for size in range(len(blob)):
        with pytest.raises(InvalidTag):
            ring.decrypt(blob[:size], kid="k", alg="ES256")


def test_a_blob_opens_only_under_the_kek_its_row_names() -> None:
    """A row's kek_id chooses the KEK: naming another KEK of the ring fails as a wrong key
    would, rather than quietly trying the rest; only no id, or one the ring does not hold,
    tries every KEK."""
    ring = KEKRing([os.urandom(32), KEK])
    kek_id, blob = KEKRing([KEK]).encrypt(b"secret", kid="k", alg="ES256")
    assert ring.ids[1] == kek_id
    assert ring.decrypt(blob, kid="k", alg="ES256", kek_id=kek_id) == b"secret"
    with pytest.raises(InvalidTag):
        ring.decrypt(blob, kid="k", alg="ES256", kek_id=ring.ids[0])
    assert ring.decrypt(blob, kid="k", alg="ES256", kek_id="not in the ring") == b"secret"
    assert ring.decrypt(blob, kid="k", alg="ES256") == b"secret"
