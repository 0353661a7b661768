"""``sealring clients`` for login clients (issue 9 §1.9): public and first-party clients,
post-logout redirect URIs and the ID token algorithm, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from sealring.cli import app
from sealring.keys.kek import KEKRing

runner = CliRunner()


@pytest.fixture(autouse=True)
def kek(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server secret is sealed under the KEK, which PostgreSQL has no development file for."""
    monkeypatch.setenv("SEALRING_KEK", KEKRing.generate_text())


def _run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_create_a_public_login_client_as_the_readme_does(database_url: str) -> None:
    code, out, err = _run(
        "clients", "create", "--name", "My SPA", "--public",
        "--grant-types", "authorization_code,refresh_token",
        "--redirect-uri", "https://app.example/cb", "--redirect-uri", "http://127.0.0.1/cb",
        "--post-logout-redirect-uri", "https://app.example/bye",
        "--scope", "openid profile email offline_access", "--json", "--database", database_url,
    )  # fmt: skip
    assert code == 0, err
    created = json.loads(out)
    assert created["client_secret"] is None
    code, out, err = _run("clients", "show", created["client_id"], "--database", database_url)
    assert code == 0, err
    shown = json.loads(out)
    assert shown["token_endpoint_auth_method"] == "none"
    assert shown["grant_types"] == ["authorization_code", "refresh_token"]
    assert shown["redirect_uris"] == ["https://app.example/cb", "http://127.0.0.1/cb"]
    assert shown["post_logout_redirect_uris"] == ["https://app.example/bye"]
    assert shown["skip_consent"] is False
    assert shown["id_token_signed_response_alg"] == "ES256"


def test_a_confidential_first_party_client_gets_a_secret(database_url: str) -> None:
    code, out, err = _run(
        "clients", "create", "--name", "Portal", "--grant-types", "authorization_code",
        "--redirect-uri", "https://portal.example/cb", "--skip-consent", "--id-token-alg", "RS256",
        "--scope", "openid", "--json", "--database", database_url,
    )  # fmt: skip
    assert code == 0, err
    created = json.loads(out)
    assert len(created["client_secret"]) == 43
    client_id = created["client_id"]
    shown = json.loads(_run("clients", "show", client_id, "--database", database_url)[1])
    assert shown["skip_consent"] is True
    assert shown["id_token_signed_response_alg"] == "RS256"
    # update keeps what it is not told, changes what it is
    code, out, err = _run(
        "clients", "update", client_id, "--ask-consent",
        "--post-logout-redirect-uri", "https://portal.example/out", "--json",
        "--database", database_url,
    )  # fmt: skip
    assert code == 0, err
    updated = json.loads(out)
    assert updated["skip_consent"] is False
    assert updated["post_logout_redirect_uris"] == ["https://portal.example/out"]
    assert updated["id_token_signed_response_alg"] == "RS256"


def test_login_client_metadata_is_checked(database_url: str) -> None:
    base = ("clients", "create", "--name", "x", "--database", database_url)
    cases = [
        ("--public", "--grant-types", "authorization_code"),  # no redirect URI
        ("--public", "--redirect-uri", "http://localhost/cb"),  # RFC 8252 §8.3
        ("--public", "--redirect-uri", "https://a.example/cb",
         "--post-logout-redirect-uri", "http://evil.example/"),
        ("--redirect-uri", "https://a.example/cb", "--grant-types", "authorization_code",
         "--id-token-alg", "HS256"),
        ("--grant-types", "refresh_token"),
    ]  # fmt: skip
    for extra in cases:
        code, _, err = _run(*base, *extra)
        assert code == 2, (extra, err)
        assert err.startswith("sealring clients: "), err
