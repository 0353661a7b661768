"""Settings: defaults, the three sources and their order, one clear message per bad value."""

from __future__ import annotations

import base64
import dataclasses
import os
from pathlib import Path

import pytest

from sealring.server.settings import (
    SECTIONS,
    Settings,
    SettingsError,
    describe_settings,
)


def test_settings_defaults() -> None:
    s = Settings.load(environ={})
    assert s.issuer == "http://127.0.0.1:8000"
    assert s.database_url == "sqlite:///./sealring.db"
    assert (s.host, s.port, s.workers) == ("127.0.0.1", 8000, 1)
    assert s.token_lifetime == 600
    assert s.jwks_max_age == 300
    assert s.redis_url is None
    assert s.server_secret is None
    assert s.token_endpoint == "http://127.0.0.1:8000/token"
    assert s.resolved_http_server == "uvicorn"
    assert Settings.load({"workers": 2}, environ={}).resolved_http_server == "uvicorn"
    assert (
        Settings.load({"workers": 2, "http_server": "granian"}, environ={}).resolved_http_server
        == "granian"
    )
    assert (
        Settings.load({"workers": 2, "http_server": "uvicorn"}, environ={}).resolved_http_server
        == "uvicorn"
    )


def test_sources_in_order(tmp_path: Path) -> None:
    config = tmp_path / "sealring.toml"
    config.write_text('port = 9001\ntoken_lifetime = 120\nissuer = "https://auth.example.com/"\n')
    env = {"SEALRING_PORT": "9002", "SEALRING_CONFIG": str(config)}
    s = Settings.load({"port": None}, environ=env)
    assert s.port == 9002  # environment over file
    assert s.token_lifetime == 120  # file over default
    assert s.issuer == "https://auth.example.com"  # trailing slash dropped
    s = Settings.load({"port": 9003}, environ=env)
    assert s.port == 9003  # command line over everything


def test_sealring_table_in_toml(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[sealring]\nworkers = 4\n")
    assert Settings.load(environ={}, config_file=config).workers == 4


def test_postgres_url_is_normalised() -> None:
    s = Settings.load(environ={"SEALRING_DATABASE_URL": "postgresql://u@h/db"})
    assert s.database_url.startswith("postgresql+psycopg://")


def test_server_secret_from_env_and_file(tmp_path: Path) -> None:
    raw = bytes(range(32))
    text = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    assert Settings.load(environ={"SEALRING_SERVER_SECRET": text}).server_secret == raw
    file = tmp_path / "secret"
    file.write_text(base64.b64encode(raw).decode() + "\n")
    s = Settings.load(environ={"SEALRING_SERVER_SECRET_FILE": str(file)})
    assert s.server_secret == raw
    assert text not in repr(s)


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        (
            {"SEALRING_PORT": "http"},
            "invalid setting port from SEALRING_PORT: 'http' is not an integer from 1 to 65535",
        ),
        ({"SEALRING_WORKERS": "0"}, "workers"),
        ({"SEALRING_TOKEN_LIFETIME": "5"}, "token_lifetime"),
        ({"SEALRING_RATE_LIMIT": "nan"}, "rate_limit"),
        ({"SEALRING_ISSUER": "http://auth.example.com"}, "must use https"),
        ({"SEALRING_ISSUER": "https://a.example/?x=1"}, "query"),
        ({"SEALRING_ISSUER": "ftp://a.example"}, "issuer"),
        ({"SEALRING_DATABASE_URL": "mysql://x/y"}, "database_url"),
        ({"SEALRING_REDIS_URL": "http://x"}, "redis_url"),
        (
            {"SEALRING_SERVER_SECRET": "c2hvcnQ="},
            "server_secret from SEALRING_SERVER_SECRET: (hidden)",
        ),
        ({"SEALRING_SERVER_SECRET_FILE": "/nonexistent/file"}, "cannot read"),
        ({"SEALRING_SIGNING_ALG": "HS256"}, "signing_alg"),
        ({"SEALRING_HTTP_SERVER": "gunicorn"}, "one of auto, uvicorn, granian"),
    ],
)
def test_invalid_settings(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(SettingsError) as err:
        Settings.load(environ=env)
    assert fragment in err.value.message
    assert "\n" not in err.value.message


def test_bad_config_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("port = [")
    with pytest.raises(SettingsError, match="not valid TOML"):
        Settings.load(environ={}, config_file=bad)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("prot = 1\n")
    with pytest.raises(SettingsError, match="unknown setting 'prot'"):
        Settings.load(environ={}, config_file=unknown)
    with pytest.raises(SettingsError, match="cannot read config file"):
        Settings.load(environ={}, config_file=tmp_path / "missing.toml")


@pytest.mark.parametrize(("cores", "workers"), [(1, 1), (3, 3), (96, 64)])
def test_workers_auto_is_one_per_usable_core(
    monkeypatch: pytest.MonkeyPatch, cores: int, workers: int
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    assert Settings.load({"workers": "auto"}, environ={}).workers == workers
    assert Settings.load(environ={"SEALRING_WORKERS": "Auto"}).workers == workers
    assert Settings.load({"workers": "2"}, environ={}).workers == 2
    with pytest.raises(SettingsError, match="or auto"):
        Settings.load({"workers": "automatic"}, environ={})


def test_round_trip_for_workers() -> None:
    s = Settings.load({"server_secret": bytes(32), "key_algorithms": "ES256 EdDSA"}, environ={})
    assert Settings.from_json(s.to_json()) == s


# -- one declaration per setting ------------------------------------------------------------------


def test_every_field_is_described_once_with_its_section_source_and_default() -> None:
    specs = describe_settings()
    assert [s.name for s in specs] == [f.name for f in dataclasses.fields(Settings)]
    defaults = Settings()
    for spec in specs:
        assert spec.section in SECTIONS
        assert spec.env == "SEALRING_" + spec.name.upper()
        assert spec.help
        assert spec.allowed, f"{spec.name}: its parser has no description for error messages"
        assert getattr(defaults, spec.name) == spec.default
    # Sections are contiguous, in the documented order.
    order = [s.section for s in specs]
    assert order == sorted(order, key=list(SECTIONS).index)
    assert {s.name for s in specs if s.secret} == {"server_secret", "metrics_token"}


def test_each_environment_variable_named_in_the_description_is_read() -> None:
    base = {"SEALRING_ISSUER": "https://auth.example.test"}
    for spec in describe_settings():
        environ = {**base, spec.env: "\x00 not a value"}
        if spec.name == "host":  # any text is a host name to try binding
            assert Settings.load(environ=environ).host == "\x00 not a value"
            continue
        with pytest.raises(SettingsError, match=f"invalid setting {spec.name} from {spec.env}:"):
            Settings.load(environ=environ)


def test_the_options_of_sealring_serve_are_the_described_ones() -> None:
    import typer

    from sealring.cli.serve import serve

    app = typer.Typer()
    app.command()(serve)
    command = typer.main.get_command(app)
    declared = {opt for param in command.params for opt in param.opts} - {
        "--config",  # the TOML file itself, not a setting
        "--install-completion",
        "--show-completion",
    }
    assert declared == {s.option for s in describe_settings() if s.option}


def test_a_secret_setting_is_never_shown() -> None:
    secret = base64.b64encode(b"k" * 32).decode()
    settings = Settings.load(environ={"SEALRING_SERVER_SECRET": secret})
    assert secret not in repr(settings)
    assert "server_secret" not in repr(settings)


# -- issue 12: schedules resource servers can follow -------------------------------------------


def _env(**values: str) -> dict[str, str]:
    return {f"SEALRING_{name.upper()}": value for name, value in values.items()}


# Rotation every 6 s, max-age 1 s, pre-publication 3 s: 65-81 % of valid tokens got 401 at a
# verifier with a 30 s unknown-kid cooldown (issue 12).
ISSUE_12_SCHEDULE = _env(
    rotation_interval="6", jwks_max_age="1", key_prepublication="3", key_algorithms="ES256"
)


def test_the_issue_12_schedule_is_refused_without_the_test_override() -> None:
    # 30 s tokens and 1 s leeway keep the key count in bounds: only the cache rule refuses it.
    fast = {**ISSUE_12_SCHEDULE, **_env(token_lifetime="30", key_leeway="1")}
    with pytest.raises(
        SettingsError, match=r"pre-publication 3 s is shorter than the 3\d(\.\d+)? s"
    ):
        Settings.load(environ=fast)
    accepted = Settings.load(environ={**fast, "SEALRING_UNSAFE_KEY_SCHEDULE": "true"})
    assert accepted.rotation_policy().prepublication_time == 3


def test_rotation_under_an_hour_is_refused_as_docs_keys_says() -> None:
    with pytest.raises(SettingsError, match="rotation interval 3599 s is under the minimum"):
        Settings.load(environ=_env(rotation_interval="3599"))
    assert Settings.load(environ=_env(rotation_interval="3600")).rotation_interval == 3600


@pytest.mark.parametrize("max_age", ["1", "60", "300", "3600"])
def test_the_default_prepublication_covers_a_30_s_cooldown(max_age: str) -> None:
    policy = Settings.load(environ=_env(jwks_max_age=max_age)).rotation_policy()
    assert policy.prepublication_time >= 30 + policy.jwks_max_age + policy.poll_interval_time


def test_a_schedule_publishing_more_keys_than_verifiers_accept_is_refused() -> None:
    many = _env(
        key_algorithms="ES256 RS256 PS256 EdDSA", token_lifetime="86400", rotation_interval="3600"
    )
    with pytest.raises(SettingsError, match=r"up to 108 keys .* more than 100"):
        Settings.load(environ=many)
    # Not even for tests: the server's own verifier would refuse the JWK Set.
    fast = {**ISSUE_12_SCHEDULE, **_env(unsafe_key_schedule="true")}
    with pytest.raises(SettingsError, match="more than 100"):
        Settings.load(environ=fast)
    fine = {**many, "SEALRING_KEY_ALGORITHMS": "ES256 RS256"}
    assert Settings.load(environ=fine).rotation_policy().max_published_keys == 54


def test_reliability_settings_have_sane_defaults_and_bounds() -> None:
    s = Settings.load(environ={})
    assert (s.database_timeout, s.database_connect_timeout) == (3.0, 2.0)
    assert (s.database_statement_timeout, s.database_pool_timeout) == (5.0, 1.0)
    assert (s.redis_timeout, s.rate_limit_fail_closed, s.unsafe_key_schedule) == (0.5, False, False)
    assert Settings.load(environ=_env(rate_limit_fail_closed="yes")).rate_limit_fail_closed
    with pytest.raises(SettingsError, match=r"rate_limit_fail_closed .* is not true or false"):
        Settings.load(environ=_env(rate_limit_fail_closed="maybe"))
    with pytest.raises(SettingsError, match="database_timeout"):
        Settings.load(environ=_env(database_timeout="0"))
    restored = Settings.from_json(Settings.load(environ=_env(unsafe_key_schedule="1")).to_json())
    assert restored.unsafe_key_schedule is True
