"""The form parser (``http/forms.py``) reads exactly what ``urllib.parse.parse_qsl`` reads.

``parse_form`` replaced a ``parse_qsl`` call on the token endpoint's hot path; the reference
below is that call, with the checks that surrounded it, so any text the two read differently,
or one refuses and the other accepts, fails here.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sealring.server.http.forms import MAX_FIELDS, parse_form

_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def reference(text: str) -> dict[str, list[str]] | None:
    """What the reader did before: ``None`` where it answered ``invalid_request``."""
    try:
        if "%" in text and _BAD_ESCAPE.search(text):
            raise ValueError("malformed percent-escape")
        pairs = parse_qsl(
            text, keep_blank_values=False, strict_parsing=False,
            max_num_fields=MAX_FIELDS, errors="strict",
        )  # fmt: skip
    except (UnicodeDecodeError, ValueError):
        return None
    values: dict[str, list[str]] = {}
    for name, value in pairs:
        values.setdefault(name, []).append(value)
    return values


def parsed(text: str) -> dict[str, list[str]] | None:
    try:
        return parse_form(text)
    except (UnicodeDecodeError, ValueError):
        return None


# Texts built from the characters that matter: separators, escapes (good, truncated, not UTF-8,
# multi-byte), plus, and plain letters.
PIECES = st.sampled_from(
    ["&", "=", "+", "%", "%2", "%20", "%26", "%3D", "%2B", "%C3%A9", "%C3", "%FF", "%e2%82%ac",
     "a", "b", "grant_type", "scope", "é", " ", ";", "%zz", "%%"]
)  # fmt: skip


@settings(max_examples=600, deadline=None)
@given(st.lists(PIECES, max_size=24).map("".join))
def test_parse_form_reads_what_parse_qsl_reads(text: str) -> None:
    assert parsed(text) == reference(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("grant_type=client_credentials&scope=items:read",
         {"grant_type": ["client_credentials"], "scope": ["items:read"]}),
        ("scope=a+b&scope=c%20d", {"scope": ["a b", "c d"]}),
        ("a=&b&=c&&d=%C3%A9", {"": ["c"], "d": ["é"]}),
        ("x=%26%3D%2B", {"x": ["&=+"]}),
    ],
)  # fmt: skip
def test_parse_form_decodes_and_groups_repeats(text: str, expected: dict[str, list[str]]) -> None:
    assert parse_form(text) == expected
    assert reference(text) == expected


@pytest.mark.parametrize(
    "text",
    ["a=%zz", "a=%2", "x%=1", "a=%FF", "a=%C3", "%C3=1", "&".join(["a=1"] * (MAX_FIELDS + 1))],
)
def test_parse_form_refuses_bad_escapes_bad_utf8_and_too_many_fields(text: str) -> None:
    with pytest.raises(ValueError):
        parse_form(text)
    assert reference(text) is None


def test_parse_form_takes_exactly_max_fields() -> None:
    text = "&".join(f"p{i}=v" for i in range(MAX_FIELDS))
    assert len(parse_form(text)) == MAX_FIELDS
