"""Signing keys on a SoftHSM2 token through PKCS#11 (a token of the tests' own, in a temp dir)."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from sealring.jose.jwks import KeySet
from sealring.jose.jws import LocalSigner, Signer, sign_compact, verify_compact
from sealring.keys import HSMConfig, KEKRing, KeyConfigError, KeyManager, RotationPolicy
from sealring.keys.hsm import HSM, HSMSigner
from tests.helpers.clock import T0, FakeClock
from tests.helpers.keys import POLICY, Spawn, wait_for

pytestmark = pytest.mark.hsm


@pytest.mark.parametrize("alg", ["ES256", "RS256", "PS256", "EdDSA"])
def test_keys_are_made_and_used_on_the_token(
    alg: str, sqlite_url: str, managers: Callable[..., KeyManager], hsm_config: HSMConfig
) -> None:
    policy = RotationPolicy(algorithms=(alg,), rotation_interval=1000, jwks_max_age=10)
    manager = managers(sqlite_url, kek=None, hsm=hsm_config, policy=policy)
    manager.ensure_ready()
    signer = manager.signer(alg)
    assert isinstance(signer, HSMSigner)
    assert isinstance(signer, Signer)
    assert signer.kid == signer.public_jwk().thumbprint()
    token = sign_compact(b"on the token", signer)
    keys = KeySet.from_json(manager.jwks().body)
    assert verify_compact(token, keys).payload == b"on the token"
    assert [k.backend for k in manager.list_keys()] == ["hsm"]


def test_private_keys_are_sensitive_and_never_extractable(hsm_config: HSMConfig) -> None:
    from pkcs11 import Attribute, ObjectClass

    hsm = HSM(hsm_config)
    try:
        ref, _ = hsm.generate("ES256", "0123456789abcdef")
        private = hsm._private(ref)
        assert private[Attribute.SENSITIVE] is True
        assert private[Attribute.EXTRACTABLE] is False
        assert private[Attribute.NEVER_EXTRACTABLE] is True
        assert private[Attribute.TOKEN] is True
        assert private[Attribute.LABEL] == f"{hsm_config.label_prefix}0123456789abcdef-{ref}"
        assert private[Attribute.CLASS] == ObjectClass.PRIVATE_KEY
        assert hsm.destroy(ref, {hsm_config.label_prefix + ref}) == 0  # not under that label
        assert ref in hsm.refs()
        assert hsm.destroy(ref, {hsm.label("0123456789abcdef", ref)}) == 2  # private + public
        assert ref not in hsm.refs()
    finally:
        hsm.close()


def test_lifecycle_on_the_token_destroys_removed_keys(
    sqlite_url: str, managers: Callable[..., KeyManager], hsm_config: HSMConfig, clock: FakeClock
) -> None:
    manager = managers(sqlite_url, kek=None, hsm=hsm_config)
    manager.ensure_ready()
    first = manager.signer("ES256").kid
    clock.advance(1000)
    manager.run_due()
    clock.advance(POLICY.prepublication_time)
    manager.run_due()
    second = manager.signer("ES256")
    assert second.kid != first
    inspector = HSM(hsm_config)
    try:
        assert len(inspector.refs()) == 2  # retired key still on the token
        clock.advance(POLICY.retention)
        manager.run_due()
        assert len(inspector.refs()) == 1  # removal destroyed the token objects
        manager.revoke(second.kid, "test")
        assert len(inspector.refs()) == 1  # revoked one destroyed, replacement created
    finally:
        inspector.close()


def test_an_orphan_of_a_killed_rotation_waits_for_gc_hsm(
    sqlite_url: str, managers: Callable[..., KeyManager], hsm_config: HSMConfig
) -> None:
    """An object labelled as this installation's that no row records is left alone by every
    write, listed by the dry run and destroyed by ``gc_hsm(delete=True)`` alone."""
    manager = managers(sqlite_url, kek=None, hsm=hsm_config)
    manager.ensure_ready()
    installation = manager.gc_hsm().installation
    stray = HSM(hsm_config)
    try:
        orphan, _ = stray.generate("ES256", installation)  # as if a rotation died uncommitted
        manager.rotate()
        assert orphan in stray.refs()
        assert len(stray.refs()) == 3
        listed = manager.gc_hsm()
        assert [(o.ref, o.kid, o.state) for o in listed.orphans] == [(orphan, None, None)]
        assert not listed.deleted
        assert len(stray.refs()) == 3  # the dry run destroyed nothing
        assert manager.gc_hsm(delete=True).deleted
        assert orphan not in stray.refs()
        assert len(stray.refs()) == 2
        assert manager.gc_hsm().orphans == []
    finally:
        stray.close()


def test_hsm_config_from_env(tmp_path: object) -> None:
    assert HSMConfig.from_env({}) is None
    env = {"SEALRING_HSM_MODULE": "/lib.so", "SEALRING_HSM_TOKEN": "t", "SEALRING_HSM_PIN": "9876"}
    config = HSMConfig.from_env(env)
    assert config is not None
    assert config.pin == "9876"
    assert config.label_prefix == "sealring-"
    assert "9876" not in repr(config)
    with pytest.raises(KeyConfigError, match="PIN"):
        HSMConfig.from_env({**env, "SEALRING_HSM_PIN": ""})
    with pytest.raises(KeyConfigError, match="TOKEN"):
        HSMConfig.from_env({"SEALRING_HSM_MODULE": "/lib.so"})


def test_wrong_pin_is_a_clear_error_without_the_pin(hsm_config: HSMConfig) -> None:
    from sealring.keys import HSMError

    bad = HSMConfig(hsm_config.module, hsm_config.token_label, pin="000000-wrong")
    with pytest.raises(HSMError) as caught:
        HSM(bad)
    assert "000000-wrong" not in str(caught.value)
    assert hsm_config.token_label in str(caught.value)
    good = HSM(hsm_config)  # a session already logged in must not let a wrong PIN through
    try:
        with pytest.raises(HSMError, match="PinIncorrect"):
            HSM(bad)
    finally:
        good.close()


def test_sigkill_mid_rotation_leaves_an_object_only_gc_hsm_destroys(
    sqlite_url: str,
    managers: Callable[..., KeyManager],
    hsm_config: HSMConfig,
    softhsm_conf: Path,
    tmp_path: Path,
    spawn: Spawn,
) -> None:

    manager = managers(sqlite_url, kek=None, hsm=hsm_config)
    manager.ensure_ready()
    env = {
        "SOFTHSM2_CONF": str(softhsm_conf),
        "SEALRING_HSM_MODULE": hsm_config.module,
        "SEALRING_HSM_TOKEN": hsm_config.token_label,
        "SEALRING_HSM_PIN": hsm_config.pin,
        "SEALRING_HSM_LABEL_PREFIX": hsm_config.label_prefix,
    }
    proc = spawn("kill", sqlite_url, T0 + 1000, tmp_path, "victim", env)
    wait_for(tmp_path / "victim.inside", [proc])
    inspector = HSM(hsm_config)
    try:
        assert len(inspector.refs()) == 2  # the killed rotation's key exists on the token...
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
        assert [k.state for k in manager.list_keys()] == ["active"]  # ...but not in the database
        manager.rotate()  # the next write rotates properly and leaves the orphan alone
        assert len(inspector.refs()) == 3
        assert sorted(k.state for k in manager.list_keys()) == ["active", "pending"]
        assert len(manager.gc_hsm(delete=True).orphans) == 1  # gc-hsm destroys it
        assert len(inspector.refs()) == 2
    finally:
        inspector.close()


def test_each_key_stays_in_the_store_it_was_made_in(
    sqlite_url: str, managers: Callable[..., KeyManager], hsm_config: HSMConfig, kek: KEKRing
) -> None:
    """Adding an HSM sends new keys there; the database key already signing keeps signing."""
    before = managers(sqlite_url)
    before.ensure_ready()
    first = before.signer("ES256")
    assert isinstance(first, LocalSigner)
    both = managers(sqlite_url, hsm=hsm_config)
    both.ensure_ready()
    assert both.signer("ES256").kid == first.kid
    assert not isinstance(both.signer("ES256"), HSMSigner)
    both.rotate("ES256", immediate=True)
    assert isinstance(both.signer("ES256"), HSMSigner)
    assert sorted(k.backend for k in both.list_keys()) == ["db", "hsm"]
    # A replica without the HSM cannot open the key that now signs: it says so, it does not
    # fall back to another key.
    without = managers(sqlite_url, kek=kek)
    with pytest.raises(KeyConfigError, match="no HSM is configured"):
        without.ensure_ready()
