"""JWK Set parsing (RFC 7517 §5): its size and key-count caps at their edge, and what is skipped.

A set that holds private or symmetric material is refused whole; a key this implementation
cannot use is skipped with a reason and the rest of the set still serves.
"""

from __future__ import annotations

import json

import pytest

from sealring.jose import JWK, InvalidKeySet, KeySet
from sealring.jose.jwks import DEFAULT_MAX_KEYS, DEFAULT_MAX_SIZE
from tests.helpers.jose import key


def _public(alg: str = "ES256", **changes: object) -> dict[str, object]:
    member = JWK.generate(alg).public().to_dict()
    member.update(changes)
    return {k: v for k, v in member.items() if v is not None}


def _document_of_size(size: int) -> str:
    doc = {"keys": [], "pad": ""}
    doc["pad"] = "x" * (size - len(json.dumps(doc)))
    text = json.dumps(doc)
    assert len(text) == size
    return text


def test_the_default_size_cap_holds_at_its_value() -> None:
    assert DEFAULT_MAX_SIZE == 512 * 1024
    assert len(KeySet.from_json(_document_of_size(DEFAULT_MAX_SIZE))) == 0
    with pytest.raises(InvalidKeySet):
        KeySet.from_json(_document_of_size(DEFAULT_MAX_SIZE + 1))
    with pytest.raises(InvalidKeySet):
        KeySet.from_json(_document_of_size(DEFAULT_MAX_SIZE + 1).encode())


def test_a_custom_size_cap_holds_at_its_value() -> None:
    text = _document_of_size(300)
    KeySet.from_json(text, max_size=300)
    KeySet.from_json(text.encode(), max_size=300)
    with pytest.raises(InvalidKeySet):
        KeySet.from_json(text, max_size=299)


def test_the_default_key_count_cap_holds_at_its_value() -> None:
    assert DEFAULT_MAX_KEYS == 100
    one = key("ES256").public().to_dict()
    members = [{**one, "kid": f"k{i}"} for i in range(DEFAULT_MAX_KEYS + 1)]
    assert len(KeySet.from_dict({"keys": members[:DEFAULT_MAX_KEYS]})) == DEFAULT_MAX_KEYS
    with pytest.raises(InvalidKeySet):
        KeySet.from_dict({"keys": members})
    with pytest.raises(InvalidKeySet):
        KeySet.from_json(json.dumps({"keys": members}))
    assert len(KeySet.from_json(json.dumps({"keys": members[:3]}), max_keys=3)) == 3
    with pytest.raises(InvalidKeySet):
        KeySet.from_json(json.dumps({"keys": members[:4]}), max_keys=3)


@pytest.mark.parametrize("doc", [[], "keys", {"keys": {}}, {"keys": None}, {}])
def test_a_document_that_is_not_a_key_set_is_refused(doc: object) -> None:
    with pytest.raises(InvalidKeySet):
        KeySet.from_dict(doc)  # type: ignore[arg-type]


@pytest.mark.parametrize("member", ["d", "p", "q", "dp", "dq", "qi", "oth", "k"])
def test_a_member_with_private_parts_refuses_the_whole_set(member: str) -> None:
    with pytest.raises(InvalidKeySet):
        KeySet.from_dict({"keys": [_public(), _public(**{member: "AAAA"})]})


def test_a_symmetric_key_refuses_the_whole_set() -> None:
    with pytest.raises(InvalidKeySet):
        KeySet.from_dict({"keys": [_public(), {"kty": "oct", "kid": "s"}]})


def test_a_duplicate_kid_refuses_the_whole_set() -> None:
    a = _public(kid="same")
    b = _public(kid="same")
    with pytest.raises(InvalidKeySet):
        KeySet.from_dict({"keys": [a, b]})


def test_a_private_key_cannot_enter_a_verification_set() -> None:
    with pytest.raises(InvalidKeySet):
        KeySet((key("ES256"),))


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        (7, "not a JSON object"),
        ({"kty": "XYZ", "kid": "u"}, "unsupported kty"),
        ({"kid": "u"}, "unsupported kty"),
        ("use-enc", "use is not 'sig'"),
        ("ops-encrypt", "key_ops does not allow verification"),
        ("bad-curve", "key 1"),
    ],
)
def test_an_unusable_key_is_skipped_with_a_reason(member: object, reason: str) -> None:
    if member == "use-enc":
        member = _public(use="enc", kid="u")
    elif member == "ops-encrypt":
        member = _public(key_ops=["encrypt"], kid="u")
    elif member == "bad-curve":
        member = _public(crv="P-999", kid="u")
    good = _public(kid="good")
    keys = KeySet.from_dict({"keys": [good, member]})
    assert keys.kids == frozenset({"good"})
    assert len(keys.skipped) == 1
    assert reason in keys.skipped[0]
    assert keys.skipped[0].startswith("key 1")


@pytest.mark.parametrize("ops", [["verify"], ["sign"], ["sign", "encrypt"], []])
def test_key_ops_must_allow_signing_or_verification(ops: object) -> None:
    keys = KeySet.from_dict({"keys": [_public(key_ops=ops, kid="k")]})
    if ops == []:
        assert keys.kids == frozenset()  # an empty list allows nothing
    else:
        assert keys.kids == frozenset({"k"})


def test_a_key_without_use_is_a_signing_key() -> None:
    member = _public(kid="k")
    member.pop("use", None)
    assert KeySet.from_dict({"keys": [member]}).kids == frozenset({"k"})


def test_a_skipped_key_names_its_kid_truncated() -> None:
    keys = KeySet.from_dict({"keys": [{"kty": "XYZ", "kid": "k" * 100}]})
    assert "k" * 64 in keys.skipped[0]
    assert "k" * 65 not in keys.skipped[0]


def test_a_key_set_is_immutable_and_answers_membership() -> None:
    keys = KeySet.of(key("ES256"))
    with pytest.raises(AttributeError):
        keys.keys = ()  # type: ignore[misc]
    assert key("ES256").kid in keys
    assert 5 not in keys
    assert list(keys) == list(keys.keys)
    assert keys.get(key("ES256").kid) == key("ES256").public()
    assert keys.get("nope") is None
    assert KeySet.from_dict(keys.to_dict()).kids == keys.kids
    assert repr(keys) == f"KeySet(kids={[key('ES256').kid]!r}, skipped=0)"


@pytest.mark.parametrize(
    "bad",
    [
        {"kty": "XYZ", "kid": "u"},
        {"kid": "u", "use": "enc", "kty": "EC"},
        {"kid": "u", "key_ops": ["encrypt"], "kty": "EC"},
        {"kid": "u", "kty": "EC", "crv": "P-999"},
        7,
    ],
)
def test_a_skipped_key_does_not_end_the_set(bad: object) -> None:
    keys = KeySet.from_dict({"keys": [bad, _public(kid="a"), bad, _public(kid="b")]})
    assert keys.kids == frozenset({"a", "b"})
    assert len(keys.skipped) == 2


def test_a_document_that_is_not_an_object_is_named_in_the_refusal() -> None:
    with pytest.raises(InvalidKeySet, match=r"JWK Set: not a JSON object"):
        KeySet.from_json("[]")
