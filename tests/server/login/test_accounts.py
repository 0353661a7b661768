"""The password policy (argon2id) and account checks of sealring.server.accounts."""

from __future__ import annotations

import unicodedata

import pytest
from argon2 import PasswordHasher
from argon2 import extract_parameters as argon2_parameters
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sealring.server.accounts import (
    Account,
    AccountRecord,
    AuthenticationFailed,
    PasswordPolicy,
    normalize_username,
)

# Cheap parameters keep the suite fast; the default policy is tested once on its own.
FAST = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}
ALICE = Account("sub-alice", "alice", {"email": "alice@example.com"})


@pytest.fixture(scope="module")
def policy() -> PasswordPolicy:
    return PasswordPolicy(**FAST)


def record(policy: PasswordPolicy, password: str, account: Account = ALICE) -> AccountRecord:
    return AccountRecord(account, policy.hash(password))


def test_default_parameters_are_rfc9106_low_memory_argon2id() -> None:
    policy = PasswordPolicy()
    params = argon2_parameters(policy.hash("correct horse"))
    assert params.type.name == "ID"
    assert (params.time_cost, params.memory_cost, params.parallelism) == (3, 65536, 4)
    assert (params.hash_len, params.salt_len) == (32, 16)
    assert policy.parameters == {
        "time_cost": 3,
        "memory_cost_kib": 65536,
        "parallelism": 4,
        "hash_len": 32,
        "salt_len": 16,
    }


def test_right_password_signs_in(policy: PasswordPolicy) -> None:
    check = policy.check(record(policy, "correct horse"), "correct horse")
    assert check.account == ALICE
    assert check.new_hash is None


def test_wrong_password_fails(policy: PasswordPolicy) -> None:
    with pytest.raises(AuthenticationFailed):
        policy.check(record(policy, "correct horse"), "correct horsf")


def test_hashes_are_salted(policy: PasswordPolicy) -> None:
    assert policy.hash("correct horse") != policy.hash("correct horse")


def _failure_message(policy: PasswordPolicy, rec: AccountRecord | None, password: str) -> str:
    with pytest.raises(AuthenticationFailed) as info:
        policy.check(rec, password)
    return str(info.value)


def test_every_failure_says_the_same(policy: PasswordPolicy) -> None:
    good = record(policy, "correct horse")
    disabled = AccountRecord(Account("s", "bob", disabled=True), policy.hash("correct horse"))
    messages = {
        _failure_message(policy, good, "wrong password"),
        _failure_message(policy, None, "correct horse"),
        _failure_message(policy, AccountRecord(ALICE, None), "correct horse"),
        _failure_message(policy, disabled, "correct horse"),
    }
    assert messages == {"unknown username or wrong password"}


class CountingHasher(PasswordHasher):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.verified: list[str] = []

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.verified.append(hash if isinstance(hash, str) else hash.decode())
        return super().verify(hash, password)


@pytest.mark.parametrize("case", ["unknown", "no_password", "disabled"])
def test_unknown_user_costs_a_verification_with_the_same_parameters(case: str) -> None:
    policy = PasswordPolicy(**FAST)
    counting = CountingHasher(**FAST)  # type: ignore[arg-type]
    policy._hasher = counting
    rec: AccountRecord | None = {
        "unknown": None,
        "no_password": AccountRecord(ALICE, None),
        "disabled": AccountRecord(
            Account("s", "bob", disabled=True), PasswordHasher(**FAST).hash("correct horse")
        ),
    }[case]
    with pytest.raises(AuthenticationFailed):
        policy.check(rec, "correct horse")
    assert len(counting.verified) == 1
    used = argon2_parameters(counting.verified[0])
    real = argon2_parameters(policy.hash("some password"))
    assert (used.time_cost, used.memory_cost, used.parallelism) == (
        real.time_cost,
        real.memory_cost,
        real.parallelism,
    )


def test_the_dummy_secret_does_not_sign_in_an_unknown_user(policy: PasswordPolicy) -> None:
    with pytest.raises(AuthenticationFailed):
        policy.check(None, "sealring: no such account")
    with pytest.raises(AuthenticationFailed):
        policy.check(AccountRecord(ALICE, None), "sealring: no such account")


def test_disabled_account_fails_even_with_the_right_password(policy: PasswordPolicy) -> None:
    disabled = Account("s", "bob", disabled=True)
    with pytest.raises(AuthenticationFailed):
        policy.check(AccountRecord(disabled, policy.hash("correct horse")), "correct horse")


def test_changed_parameters_ask_for_a_rehash(policy: PasswordPolicy) -> None:
    old = record(policy, "correct horse")
    stronger = PasswordPolicy(time_cost=2, memory_cost=16, parallelism=1)
    check = stronger.check(old, "correct horse")
    assert check.new_hash is not None
    params = argon2_parameters(check.new_hash)
    assert (params.time_cost, params.memory_cost) == (2, 16)
    assert stronger.check(AccountRecord(ALICE, check.new_hash), "correct horse").new_hash is None


def test_failed_sign_in_never_offers_a_rehash(policy: PasswordPolicy) -> None:
    stronger = PasswordPolicy(time_cost=2, memory_cost=16, parallelism=1)
    with pytest.raises(AuthenticationFailed):
        stronger.check(record(policy, "correct horse"), "wrong horse")


def test_corrupt_stored_hash_fails_closed(policy: PasswordPolicy) -> None:
    for broken in ["", "not a hash", "$argon2id$v=19$m=8,t=1,p=1$AAAA$"]:
        with pytest.raises(AuthenticationFailed):
            policy.check(AccountRecord(ALICE, broken), "correct horse")


def test_password_is_nfc_normalised(policy: PasswordPolicy) -> None:
    composed = "p\u00e4ssword"
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    policy.check(record(policy, composed), decomposed)


@pytest.mark.parametrize("password", ["short", "1234567", "x" * 1025])
def test_new_password_length_is_enforced(policy: PasswordPolicy, password: str) -> None:
    with pytest.raises(ValueError, match="8 to 1024"):
        policy.hash(password)


def test_over_long_password_never_signs_in(policy: PasswordPolicy) -> None:
    rec = record(policy, "x" * 1024)
    policy.check(rec, "x" * 1024)
    with pytest.raises(AuthenticationFailed):
        policy.check(rec, "x" * 1025)


def test_an_over_long_password_never_signs_in_even_against_its_own_hash(
    policy: PasswordPolicy,
) -> None:
    # A hash made outside the policy (an import, an older limit) for a password over the cap:
    # the cap holds at sign-in too, the right password included.
    over = "x" * 1025
    rec = AccountRecord(ALICE, PasswordHasher(**FAST).hash(over))  # type: ignore[arg-type]
    with pytest.raises(AuthenticationFailed):
        policy.check(rec, over)


def test_hash_and_salt_lengths_are_the_policys() -> None:
    policy = PasswordPolicy(**FAST, hash_len=64, salt_len=32)
    params = argon2_parameters(policy.hash("correct horse"))
    assert (params.hash_len, params.salt_len) == (64, 32)


def test_hashes_and_passwords_stay_out_of_reprs(policy: PasswordPolicy) -> None:
    rec = record(policy, "correct horse")
    assert rec.password_hash is not None
    assert rec.password_hash not in repr(rec)
    assert "argon2id" in repr(policy)


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("Alice", "alice"),
        (" alice ", "alice"),
        ("\uff41\uff4c\uff49\uff43\uff45", "alice"),
        ("STRASSE", "strasse"),
        ("Stra\u00dfe", "strasse"),
    ],
)
def test_usernames_are_normalised(raw: str, normal: str) -> None:
    assert normalize_username(raw) == normal


@settings(max_examples=25, deadline=None)
@given(st.text(min_size=8, max_size=40), st.text(min_size=8, max_size=40))
def test_only_the_set_password_signs_in(password: str, other: str) -> None:
    assume(len(unicodedata.normalize("NFC", password)) >= 8)
    policy = PasswordPolicy(**FAST)
    rec = AccountRecord(ALICE, policy.hash(password))
    assert policy.check(rec, password).account == ALICE
    if unicodedata.normalize("NFC", other) != unicodedata.normalize("NFC", password):
        with pytest.raises(AuthenticationFailed):
            policy.check(rec, other)
