"""HTTP Basic client credentials (RFC 6749 §2.3.1, RFC 7617 §2): decoded strictly.

Both parts are application/x-www-form-urlencoded before base64: "+" is a space, "%XX" an octet of
UTF-8; the user-id ends at the first colon; anything that does not decode is invalid_client, never
a different client id or a 500.
"""

from __future__ import annotations

import base64

import pytest

from sealring.server.errors import InvalidClient, InvalidRequest
from sealring.server.http.forms import Form
from sealring.server.protocol.client_auth import extract_credentials


def _read(raw: bytes | str, **form: str) -> tuple[str, str | None]:
    value = raw if isinstance(raw, str) else base64.b64encode(raw).decode()
    creds = extract_credentials("Basic " + value, Form({k: [v] for k, v in form.items()}))
    assert creds.method == "client_secret_basic"
    return creds.client_id, creds.secret


def test_plus_is_a_space_and_percent_escapes_are_utf8() -> None:
    assert _read(b"a+b:s+t") == ("a b", "s t")
    assert _read(b"a%2Bb:s%2Bt") == ("a+b", "s+t")
    assert _read(b"caf%C3%A9:%3A%25") == ("café", ":%")


def test_the_client_id_ends_at_the_first_colon() -> None:
    assert _read(b"id:se:cr:et") == ("id", "se:cr:et")
    assert _read(b"id:") == ("id", "")


@pytest.mark.parametrize("raw", [b"id:%ff", b"%ff:secret", b"id:%C3", b"\xff:secret"])
def test_an_escape_that_is_not_utf8_is_invalid_client(raw: bytes) -> None:
    with pytest.raises(InvalidClient):
        _read(raw)


@pytest.mark.parametrize(
    "value",
    [
        "aWQ6c2VjcmV0!",  # a character outside base64
        "aWQ6c2V jcmV0",  # a space inside
        "aWQ6c2VjcmV",  # a length base64 cannot have
        base64.b64encode(b"no colon").decode(),
    ],
)
def test_malformed_base64_or_no_colon_is_invalid_client(value: str) -> None:
    with pytest.raises(InvalidClient):
        _read(value)


def test_surrounding_whitespace_is_tolerated() -> None:
    encoded = base64.b64encode(b"id:secret").decode()
    assert _read(f"  {encoded}  ") == ("id", "secret")


def test_a_form_client_id_must_agree_with_basic() -> None:
    assert _read(b"id:secret", client_id="id") == ("id", "secret")
    with pytest.raises(InvalidRequest):
        _read(b"id:secret", client_id="other")


def test_another_scheme_is_not_client_authentication() -> None:
    creds = extract_credentials("Bearer abc", Form({"client_id": ["p"]}))
    assert (creds.method, creds.client_id) == ("none", "p")
    creds = extract_credentials("basic " + base64.b64encode(b"a:b").decode(), Form({}))
    assert creds.method == "client_secret_basic"  # the scheme is case-insensitive


def _form(**fields: str) -> Form:
    return Form({k: [v] for k, v in fields.items()})


def test_client_secret_post_reads_the_form() -> None:
    creds = extract_credentials(None, _form(client_id="id", client_secret="s3"))
    assert (creds.method, creds.client_id, creds.secret) == ("client_secret_post", "id", "s3")
    with pytest.raises(InvalidRequest):
        extract_credentials(None, _form(client_secret="s3"))


@pytest.mark.parametrize(
    ("basic", "fields"),
    [
        (True, {"client_secret": "s"}),
        (True, {"client_assertion": "a.b.c", "client_assertion_type": "x"}),
        (False, {"client_id": "id", "client_secret": "s", "client_assertion": "a.b.c"}),
        (True, {"client_secret": "s", "client_assertion": "a.b.c"}),
    ],
)
def test_more_than_one_method_is_refused(basic: bool, fields: dict[str, str]) -> None:
    # RFC 6749 §2.3: a client MUST NOT use more than one authentication method per request.
    header = "Basic " + base64.b64encode(b"id:secret").decode() if basic else None
    with pytest.raises(InvalidRequest):
        extract_credentials(header, _form(**fields))
