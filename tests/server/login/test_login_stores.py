"""The login stores over the 0003_login tables, on SQLite and PostgreSQL (never mocked)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from sealring.server.accounts import (
    AccountRecord,
    AuthenticationFailed,
    PasswordCheck,
    PasswordPolicy,
)
from sealring.server.stores.accounts import AccountError, DatabaseAccountStore
from sealring.server.stores.authorization_codes import (
    AuthorizationCodeStore,
    CodeAlreadyRedeemed,
    CodeGrant,
)
from sealring.server.stores.browser_sessions import BrowserSessionStore
from sealring.server.stores.consents import ConsentStore
from sealring.server.stores.interactions import InteractionStore
from sealring.server.stores.login_tables import (
    AccountRow,
    BrowserSessionRow,
    ConsentRow,
    GrantRow,
    RefreshTokenRow,
)
from sealring.server.stores.refresh_tokens import (
    RefreshPolicy,
    RefreshTokenInvalid,
    RefreshTokenReused,
    RefreshTokenStore,
)
from sealring.server.stores.tables import ClientRow
from sealring.server.tokens.handles import HandleHasher, HandleKind

NOW = 1_800_000_000.0
SECRET = b"k" * 32
HASHER = HandleHasher(SECRET)
FAST = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


@pytest.fixture(autouse=True)
def _clients(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        for client_id in ("client-1", "client-2"):
            session.add(
                ClientRow(
                    client_id=client_id,
                    name="App",
                    auth_method="none",
                    grant_types="authorization_code refresh_token",
                    scope="openid offline_access",
                    audiences="",
                    redirect_uris="https://app.example.com/cb",
                    public=True,
                    created_at=NOW,
                    updated_at=NOW,
                )
            )


@pytest.fixture
def accounts(engine: Engine) -> DatabaseAccountStore:
    return DatabaseAccountStore(engine, PasswordPolicy(**FAST), clock=lambda: NOW)


@pytest.fixture
def subject(accounts: DatabaseAccountStore) -> str:
    return accounts.create("alice", "correct horse").subject


def code_grant(subject: str, client_id: str = "client-1", **kw: Any) -> CodeGrant:
    values: dict[str, Any] = {
        "client_id": client_id,
        "subject": subject,
        "session_id": None,
        "redirect_uri": "https://app.example.com/cb",
        "redirect_uri_in_request": True,
        "scope": ("openid", "offline_access"),
        "code_challenge": CHALLENGE,
        "auth_time": NOW - 5,
        "nonce": "n-1",
        "amr": ("pwd",),
    }
    values.update(kw)
    return CodeGrant(**values)


def count(engine: Engine, model: Any) -> int:
    with Session(engine) as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def run_concurrently(n: int, call: Callable[[], object]) -> list[object]:
    """Run ``call`` in ``n`` threads released together; return results or raised errors."""
    barrier = threading.Barrier(n)
    results: list[object] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        try:
            outcome: object = call()
        except Exception as exc:  # collected and asserted on by the caller
            outcome = exc
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=worker) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == n
    return results


# -- accounts ---------------------------------------------------------------------------------


def test_account_create_find_and_sign_in(accounts: DatabaseAccountStore) -> None:
    alice = accounts.create("Alice", "correct horse", claims={"email": "a@example.com"})
    assert alice.username == "alice"
    assert accounts.find(alice.subject) == alice
    assert accounts.by_username("ALICE ") == alice
    assert accounts.authenticate("alice", "correct horse") == alice
    assert accounts.authenticate("\uff21lice", "correct horse") == alice  # full-width A
    with pytest.raises(AuthenticationFailed):
        accounts.authenticate("alice", "wrong horse")
    with pytest.raises(AuthenticationFailed):
        accounts.authenticate("bob", "correct horse")
    with pytest.raises(AuthenticationFailed):
        accounts.authenticate("", "correct horse")


def test_account_usernames_are_unique_after_normalisation(accounts: DatabaseAccountStore) -> None:
    accounts.create("alice", "correct horse")
    with pytest.raises(AccountError, match="taken"):
        accounts.create("ALICE", "another password")
    with pytest.raises(AccountError):
        accounts.create("   ", "correct horse")
    with pytest.raises(AccountError):
        accounts.create("al ice", "correct horse")
    with pytest.raises(AccountError, match="8 to 1024"):
        accounts.create("bob", "short")
    with pytest.raises(AccountError, match="unsupported claims"):
        accounts.create("carol", "correct horse", claims={"sub": "admin"})
    assert [a.username for a in accounts.list()] == ["alice"]


def test_disabled_account_cannot_sign_in(engine: Engine, accounts: DatabaseAccountStore) -> None:
    alice = accounts.create("alice", "correct horse")
    with Session(engine) as session, session.begin():
        session.get_one(AccountRow, alice.subject).disabled = True
    with pytest.raises(AuthenticationFailed):
        accounts.authenticate("alice", "correct horse")


class CountingPolicy(PasswordPolicy):
    """A real policy that also records what it was asked to check."""

    def __init__(self) -> None:
        super().__init__(**FAST)
        self.checked: list[AccountRecord | None] = []

    def check(self, record: AccountRecord | None, password: str) -> PasswordCheck:
        self.checked.append(record)
        return super().check(record, password)


def test_unknown_user_still_goes_through_the_hash(engine: Engine) -> None:
    policy = CountingPolicy()
    store = DatabaseAccountStore(engine, policy, clock=lambda: NOW)
    with pytest.raises(AuthenticationFailed):
        store.authenticate("nobody", "correct horse")
    with pytest.raises(AuthenticationFailed):
        store.authenticate("x" * 300, "correct horse")  # longer than any username
    assert policy.checked == [None, None]


def test_rehash_on_sign_in_when_parameters_changed(engine: Engine) -> None:
    old = DatabaseAccountStore(engine, PasswordPolicy(**FAST), clock=lambda: NOW)
    alice = old.create("alice", "correct horse")

    def stored() -> str | None:
        with Session(engine) as session:
            return session.get_one(AccountRow, alice.subject).password_hash

    before = stored()
    assert before is not None
    assert "t=1" in before
    with pytest.raises(AuthenticationFailed):  # a failed sign-in rehashes nothing
        DatabaseAccountStore(
            engine, PasswordPolicy(time_cost=2, memory_cost=16, parallelism=1)
        ).authenticate("alice", "wrong horse")
    assert stored() == before
    stronger = DatabaseAccountStore(
        engine, PasswordPolicy(time_cost=2, memory_cost=16, parallelism=1)
    )
    assert stronger.authenticate("alice", "correct horse") == alice
    after = stored()
    assert after is not None
    assert "t=2" in after
    assert "m=16" in after
    assert stronger.authenticate("alice", "correct horse") == alice
    assert stored() == after  # no rehash when the parameters match


def test_set_password_and_delete_cascades(
    engine: Engine, accounts: DatabaseAccountStore, subject: str
) -> None:
    assert accounts.set_password(subject, "new password!")
    with pytest.raises(AuthenticationFailed):
        accounts.authenticate("alice", "correct horse")
    accounts.authenticate("alice", "new password!")
    assert not accounts.set_password("no-such-subject", "new password!")
    BrowserSessionStore(engine, HASHER).create(subject, now=NOW)
    assert accounts.delete(subject)
    assert not accounts.delete(subject)
    assert accounts.find(subject) is None
    assert count(engine, BrowserSessionRow) == 0


# -- authorization codes ----------------------------------------------------------------------


def test_code_is_found_by_its_value_only(engine: Engine, subject: str) -> None:
    codes = AuthorizationCodeStore(engine, HASHER)
    code = codes.issue(code_grant(subject), now=NOW)
    found = codes.find(code)
    assert found is not None
    assert found.grant == code_grant(subject)
    assert found.expires_at == NOW + 60
    assert found.consumed_at is None
    assert codes.find(code[:-1] + ("A" if code[-1] != "A" else "B")) is None
    assert codes.find("not a code") is None
    # The same value is not a refresh token: the kind is inside the hash.
    refresh = RefreshTokenStore(engine, HASHER, SECRET)
    assert refresh.find(code) is None
    with pytest.raises(ValueError):
        codes.issue(code_grant(subject), now=NOW, lifetime=61)


def test_code_redeems_once_and_replay_names_the_grant(engine: Engine, subject: str) -> None:
    codes = AuthorizationCodeStore(engine, HASHER)
    refresh = RefreshTokenStore(engine, HASHER, SECRET)
    code = codes.issue(code_grant(subject), now=NOW)
    redeemed = codes.redeem(code, now=NOW + 1, grant_lifetime=3600, refresh_tokens=refresh)
    assert redeemed.refresh_token is not None
    assert redeemed.code is not None  # the code as the redemption found it
    assert (redeemed.code.grant, redeemed.code.consumed_at) == (code_grant(subject), None)
    with pytest.raises(CodeAlreadyRedeemed) as replay:
        codes.redeem(code, now=NOW + 2, grant_lifetime=3600, refresh_tokens=refresh)
    assert replay.value.grant_id == redeemed.grant_id
    again = codes.find(code)
    assert again is not None
    assert again.consumed_at == NOW + 1
    assert again.grant_id == redeemed.grant_id
    assert count(engine, GrantRow) == 1  # the failed redemption left no grant behind
    # The caller revokes on a proven replay; the first token of the family stops working.
    assert refresh.revoke_grant(redeemed.grant_id, now=NOW + 2, reason="code_replay")
    first = refresh.find(redeemed.refresh_token)
    assert first is not None
    assert not first.grant.active(NOW + 3)
    with pytest.raises(RefreshTokenInvalid):
        refresh.rotate(redeemed.refresh_token, now=NOW + 3)


def test_expired_code_cannot_be_redeemed(engine: Engine, subject: str) -> None:
    codes = AuthorizationCodeStore(engine, HASHER)
    code = codes.issue(code_grant(subject), now=NOW, lifetime=30)
    with pytest.raises(CodeAlreadyRedeemed) as exc:
        codes.redeem(code, now=NOW + 30, grant_lifetime=3600)
    assert exc.value.grant_id is None
    assert count(engine, GrantRow) == 0


def test_concurrent_redemptions_of_one_code_yield_one_grant(engine: Engine, subject: str) -> None:
    codes = AuthorizationCodeStore(engine, HASHER)
    code = codes.issue(code_grant(subject), now=NOW)
    results = run_concurrently(8, lambda: codes.redeem(code, now=NOW + 1, grant_lifetime=3600))
    winners = [r for r in results if not isinstance(r, Exception)]
    losers = [r for r in results if isinstance(r, CodeAlreadyRedeemed)]
    assert len(winners) == 1
    assert len(losers) == 7
    assert {loser.grant_id for loser in losers} == {winners[0].grant_id}  # type: ignore[attr-defined]
    assert count(engine, GrantRow) == 1


def test_code_prune_keeps_consumed_codes_for_replay_detection(engine: Engine, subject: str) -> None:
    codes = AuthorizationCodeStore(engine, HASHER)
    unused = codes.issue(code_grant(subject), now=NOW)
    used = codes.issue(code_grant(subject), now=NOW)
    codes.redeem(used, now=NOW + 1, grant_lifetime=3600)
    assert codes.prune(NOW + 60) == 0  # expired exactly now: kept until it is past
    assert codes.prune(NOW + 61) == 1
    assert codes.find(unused) is None
    assert codes.find(used) is not None
    assert codes.prune(NOW + 60 + 24 * 3600) == 0  # replay memory ends exactly now: kept
    assert codes.prune(NOW + 61 + 24 * 3600) == 1
    assert codes.find(used) is None


def test_a_code_and_its_grant_keep_everything_it_was_bound_to(engine: Engine, subject: str) -> None:
    session_id = BrowserSessionStore(engine, HASHER).create(subject, now=NOW)[1].session_id
    bound = code_grant(
        subject,
        session_id=session_id,
        acr="urn:x:loa:2",
        amr=("pwd", "otp"),
        resources=("https://api.example.com", "https://files.example.com"),
    )
    codes = AuthorizationCodeStore(engine, HASHER)
    refresh = RefreshTokenStore(engine, HASHER, SECRET)
    code = codes.issue(bound, now=NOW)
    found = codes.find(code)
    assert found is not None
    assert (found.grant, found.created_at) == (bound, NOW)
    redeemed = codes.redeem(code, now=NOW + 1, grant_lifetime=3600, refresh_tokens=refresh)
    assert redeemed.refresh_token is not None
    token = refresh.find(redeemed.refresh_token)
    assert token is not None
    family = token.grant
    assert (family.session_id, family.acr, family.amr) == (
        session_id,
        "urn:x:loa:2",
        ("pwd", "otp"),
    )
    assert family.resources == bound.resources


def test_a_code_lifetime_may_be_short_but_not_zero(engine: Engine, subject: str) -> None:
    codes = AuthorizationCodeStore(engine, HASHER)
    assert codes.find(codes.issue(code_grant(subject), now=NOW, lifetime=0.5)) is not None
    with pytest.raises(ValueError):
        codes.issue(code_grant(subject), now=NOW, lifetime=0)


def test_an_unknown_code_is_refused_like_a_used_one(engine: Engine) -> None:
    codes = AuthorizationCodeStore(engine, HASHER)
    with pytest.raises(CodeAlreadyRedeemed) as exc:
        codes.redeem("A" * 43, now=NOW, grant_lifetime=3600)
    assert exc.value.grant_id is None


def test_no_refresh_token_unless_the_check_and_the_caller_ask_for_one(
    engine: Engine, subject: str
) -> None:
    codes = AuthorizationCodeStore(engine, HASHER)
    refresh = RefreshTokenStore(engine, HASHER, SECRET)
    declined = codes.redeem(
        codes.issue(code_grant(subject), now=NOW), now=NOW + 1, grant_lifetime=3600,
        refresh_tokens=refresh, check=lambda found: False,
    )  # fmt: skip
    assert declined.refresh_token is None
    without = codes.redeem(
        codes.issue(code_grant(subject), now=NOW), now=NOW + 1, grant_lifetime=3600
    )
    assert without.refresh_token is None
    assert count(engine, RefreshTokenRow) == 0


# -- refresh tokens ---------------------------------------------------------------------------


def start_family(
    engine: Engine, subject: str, policy: RefreshPolicy | None = None, client: str = "client-1"
) -> tuple[RefreshTokenStore, str, str]:
    codes = AuthorizationCodeStore(engine, HASHER)
    refresh = RefreshTokenStore(engine, HASHER, SECRET, policy)
    redeemed = codes.redeem(
        codes.issue(code_grant(subject, client), now=NOW),
        now=NOW,
        grant_lifetime=refresh.policy.absolute_lifetime,
        refresh_tokens=refresh,
    )
    assert redeemed.refresh_token is not None
    return refresh, redeemed.grant_id, redeemed.refresh_token


def test_refresh_policy_bounds() -> None:
    RefreshPolicy(idle_lifetime=0.5, absolute_lifetime=0.5, grace_window=60)
    for bad in ({"idle_lifetime": 0}, {"absolute_lifetime": 0}, {"grace_window": 60.5}):
        with pytest.raises(ValueError):
            RefreshPolicy(**bad)  # type: ignore[arg-type]


def test_the_rotation_check_sees_the_token_as_found(engine: Engine, subject: str) -> None:
    refresh, grant_id, token = start_family(engine, subject)
    seen: list[Any] = []
    refresh.rotate(token, now=NOW + 1, check=seen.append)
    with pytest.raises(RefreshTokenInvalid):
        refresh.rotate("A" * 43, now=NOW + 1, check=seen.append)
    assert seen[0] is not None
    assert (seen[0].grant.grant_id, seen[0].consumed_at) == (grant_id, None)
    assert seen[1] is None


def test_a_family_ends_exactly_at_its_absolute_lifetime(engine: Engine, subject: str) -> None:
    refresh, grant_id, _ = start_family(engine, subject, RefreshPolicy(absolute_lifetime=100))
    record = refresh.grant(grant_id)
    assert record is not None
    assert record.active(NOW + 99.5)
    assert not record.active(NOW + 100)
    assert refresh.grant_active(grant_id, now=NOW + 99.5)
    assert not refresh.grant_active(grant_id, now=NOW + 100)


def test_a_revocation_reason_is_kept_to_32_characters(engine: Engine, subject: str) -> None:
    refresh, grant_id, _ = start_family(engine, subject)
    assert refresh.revoke_grant(grant_id, now=NOW + 1, reason="r" * 40)
    record = refresh.grant(grant_id)
    assert record is not None
    assert record.revoked_reason == "r" * 32


def rotate(refresh: RefreshTokenStore, token: str, at: float, scope: tuple[str, ...] = ()) -> Any:
    return refresh.rotate(token, now=at, scope=scope or None)


def test_rotation_issues_a_successor_and_reuse_revokes_that_family_only(
    engine: Engine, subject: str
) -> None:
    refresh, grant_id, first = start_family(engine, subject)
    _, other_grant, other = start_family(engine, subject, client="client-2")
    second = rotate(refresh, first, NOW + 10, ("openid",))
    assert second.generation == 1
    assert second.scope == ("openid",)
    assert second.refresh_token != first
    third = rotate(refresh, second.refresh_token, NOW + 20)
    assert third.scope == ("openid",)  # the narrowed scope sticks
    with pytest.raises(RefreshTokenReused) as reused:
        rotate(refresh, first, NOW + 30)
    assert reused.value.grant_id == grant_id
    grant = refresh.grant(grant_id)
    assert grant is not None
    assert grant.revoked_reason == "refresh_reuse"
    with pytest.raises(RefreshTokenInvalid):  # the live token of that family is dead too
        rotate(refresh, third.refresh_token, NOW + 31)
    assert refresh.grant_active(other_grant, now=NOW + 31)
    assert rotate(refresh, other, NOW + 32).generation == 1


def test_refresh_idle_and_absolute_lifetimes(engine: Engine, subject: str) -> None:
    policy = RefreshPolicy(idle_lifetime=100, absolute_lifetime=250)
    refresh, grant_id, first = start_family(engine, subject, policy)
    with pytest.raises(RefreshTokenInvalid):  # idle: unused for 100 s
        rotate(refresh, first, NOW + 100)
    assert refresh.grant_active(grant_id, now=NOW + 100)  # expiry is not reuse
    refresh, _, first = start_family(engine, subject, policy)
    second = rotate(refresh, first, NOW + 90)
    third = rotate(refresh, second.refresh_token, NOW + 180)
    stored = refresh.find(third.refresh_token)
    assert stored is not None
    assert stored.expires_at == NOW + 250
    with pytest.raises(RefreshTokenInvalid):
        rotate(refresh, third.refresh_token, NOW + 250)


def test_grace_window_off_by_default(engine: Engine, subject: str) -> None:
    refresh, _, first = start_family(engine, subject)
    assert refresh.policy.grace_window == 0
    rotate(refresh, first, NOW + 1)
    with pytest.raises(RefreshTokenReused):
        rotate(refresh, first, NOW + 1.5)


def test_grace_window_returns_the_same_successor_once(engine: Engine, subject: str) -> None:
    refresh, grant_id, first = start_family(engine, subject, RefreshPolicy(grace_window=10))
    second = rotate(refresh, first, NOW + 1)
    retry = rotate(refresh, first, NOW + 5)
    assert retry.retried
    assert retry.refresh_token == second.refresh_token
    assert retry.generation == second.generation
    assert refresh.family_size(grant_id) == 2  # not forked
    with pytest.raises(RefreshTokenReused):  # only once
        rotate(refresh, first, NOW + 6)


def test_prune_closes_grace_windows_and_drops_expired_families(
    engine: Engine, subject: str
) -> None:
    policy = RefreshPolicy(absolute_lifetime=1000, grace_window=10)
    refresh, grant_id, first = start_family(engine, subject, policy)
    second = rotate(refresh, first, NOW + 1)
    assert refresh.prune(NOW + 5) == 0
    assert rotate(refresh, first, NOW + 6).retried  # the window is still open
    refresh, grant_id, first = start_family(engine, subject, policy)
    rotate(refresh, first, NOW + 1)

    def sealed() -> int:
        with Session(engine) as session:
            return len(
                session.scalars(
                    select(RefreshTokenRow.token_hash).where(
                        RefreshTokenRow.successor_sealed.is_not(None)
                    )
                ).all()
            )

    assert sealed() == 1  # the second family's; the first one's retry took its own
    assert refresh.prune(NOW + 11.5) == 0
    assert sealed() == 0  # no successor stays recoverable after its window
    assert refresh.family_size(grant_id) == 2
    assert refresh.prune(NOW + 1001) == 2
    assert refresh.family_size(grant_id) == 0
    assert refresh.find(second.refresh_token) is None


def test_grace_window_closes(engine: Engine, subject: str) -> None:
    refresh, _, first = start_family(engine, subject, RefreshPolicy(grace_window=10))
    rotate(refresh, first, NOW + 1)
    with pytest.raises(RefreshTokenReused):
        rotate(refresh, first, NOW + 11.5)


def test_grace_window_ends_once_the_successor_is_used(engine: Engine, subject: str) -> None:
    refresh, _, first = start_family(engine, subject, RefreshPolicy(grace_window=10))
    second = rotate(refresh, first, NOW + 1)
    rotate(refresh, second.refresh_token, NOW + 2)
    with pytest.raises(RefreshTokenReused):
        rotate(refresh, first, NOW + 3)


def test_concurrent_uses_of_one_refresh_token(engine: Engine, subject: str) -> None:
    """The documented outcome without a grace window: one rotation wins; the first loser finds a
    consumed token and revokes the family, so the rest find it revoked.  Every loser is
    ``invalid_grant`` on the wire, and the family ends up revoked."""
    refresh, grant_id, first = start_family(engine, subject)
    results = run_concurrently(10, lambda: refresh.rotate(first, now=NOW + 1))
    assert sum(1 for r in results if not isinstance(r, Exception)) == 1
    losers = [r for r in results if isinstance(r, Exception)]
    assert len(losers) == 9
    assert all(isinstance(r, (RefreshTokenReused, RefreshTokenInvalid)) for r in losers)
    assert any(isinstance(r, RefreshTokenReused) for r in losers)
    assert refresh.family_size(grant_id) == 2
    assert not refresh.grant_active(grant_id, now=NOW + 2)


# -- browser sessions, interactions, consents -------------------------------------------------


def test_browser_session_lifetimes_and_logout(engine: Engine, subject: str) -> None:
    sessions = BrowserSessionStore(engine, HASHER, idle_lifetime=100, absolute_lifetime=250)
    cookie, created = sessions.create(subject, now=NOW)
    assert created.auth_time == NOW
    assert created.amr == ("pwd",)
    assert sessions.resume(cookie, now=NOW + 99) == created
    assert sessions.resume(cookie, now=NOW + 198) == created  # use keeps it alive
    assert sessions.resume(cookie, now=NOW + 249) == created
    assert sessions.resume(cookie, now=NOW + 250) is None  # absolute lifetime
    cookie, created = sessions.create(subject, now=NOW)
    assert sessions.resume(cookie, now=NOW + 100) is None  # idle
    cookie, created = sessions.create(subject, now=NOW)
    assert sessions.resume(cookie + "x", now=NOW) is None
    assert sessions.end(created.session_id, now=NOW + 1)
    assert not sessions.end(created.session_id, now=NOW + 2)
    assert sessions.resume(cookie, now=NOW + 2) is None
    assert sessions.prune(NOW + 300) == 3


def test_a_session_keeps_who_signed_in_and_how(engine: Engine, subject: str) -> None:
    sessions = BrowserSessionStore(engine, HASHER, idle_lifetime=100, absolute_lifetime=250)
    cookie, created = sessions.create(subject, now=NOW, amr=("pwd", "otp"), acr="urn:x:loa:2")
    assert (created.subject, created.amr, created.acr) == (subject, ("pwd", "otp"), "urn:x:loa:2")
    assert created.expires_at == NOW + 250
    assert created.session_id != cookie
    assert sessions.resume(cookie, now=NOW + 1) == created


def test_session_lifetimes_may_be_equal_and_short_but_not_zero(engine: Engine) -> None:
    assert BrowserSessionStore(engine, HASHER, idle_lifetime=0.5, absolute_lifetime=0.5)
    with pytest.raises(ValueError):
        BrowserSessionStore(engine, HASHER, idle_lifetime=0, absolute_lifetime=10)
    with pytest.raises(ValueError):
        BrowserSessionStore(engine, HASHER, idle_lifetime=11, absolute_lifetime=10)


def test_prune_deletes_ended_expired_and_idle_sessions_only(engine: Engine, subject: str) -> None:
    sessions = BrowserSessionStore(engine, HASHER, idle_lifetime=100, absolute_lifetime=250)
    live, _ = sessions.create(subject, now=NOW)
    for t in (90, 150):
        assert sessions.resume(live, now=NOW + t)
    _, ended = sessions.create(subject, now=NOW + 140)
    assert sessions.end(ended.session_id, now=NOW + 141)
    sessions.create(subject, now=NOW + 100)  # idle for exactly idle_lifetime at NOW + 200
    expiring, _ = sessions.create(subject, now=NOW - 50)  # expires at exactly NOW + 200
    for t in (40, 130, 199):
        assert sessions.resume(expiring, now=NOW + t)
    assert sessions.prune(NOW + 200) == 3
    assert sessions.resume(live, now=NOW + 201)


def test_interaction_finish_and_consume_once(engine: Engine) -> None:
    interactions = InteractionStore(engine, HASHER, lifetime=600)
    uid = interactions.create(
        "client-1", {"scope": ["openid"], "state": "s"}, prompt="login", now=NOW
    )
    found = interactions.get(uid, now=NOW + 1)
    assert found is not None
    assert found.request == {"scope": ["openid"], "state": "s"}
    assert found.prompt == "login"
    assert found.result is None
    assert not found.expired
    assert interactions.finish(uid, {"login": "sub-1"}, now=NOW + 2, prompt="consent")
    taken = interactions.consume(uid, now=NOW + 3)
    assert taken is not None
    assert taken.result == {"login": "sub-1"}
    assert taken.prompt == "consent"
    assert taken.consumed
    assert interactions.consume(uid, now=NOW + 4) is None
    assert not interactions.finish(uid, {"login": "sub-2"}, now=NOW + 5)
    assert interactions.get("not-a-uid", now=NOW) is None


def test_expired_interaction_is_flagged_not_hidden(engine: Engine) -> None:
    interactions = InteractionStore(engine, HASHER, lifetime=600)
    uid = interactions.create("client-1", {}, prompt="login", now=NOW)
    expired = interactions.get(uid, now=NOW + 600)
    assert expired is not None
    assert expired.expired
    assert expired.client_id == "client-1"
    assert interactions.consume(uid, now=NOW + 600) is None
    assert not interactions.finish(uid, {}, now=NOW + 600)
    assert interactions.prune(NOW + 600 + 3601) == 1


def test_an_interaction_keeps_its_reasons_session_and_lifetime(
    engine: Engine, subject: str
) -> None:
    sessions = BrowserSessionStore(engine, HASHER)
    first, second = (sessions.create(subject, now=NOW)[1].session_id for _ in range(2))
    interactions = InteractionStore(engine, HASHER)  # the default lifetime: 600 s
    uid = interactions.create(
        "client-1", {}, prompt="login", now=NOW, reasons=("max_age", "prompt"), session_id=first
    )
    found = interactions.get(uid, now=NOW + 599)
    assert found is not None
    assert found.uid_hash == HASHER.hash(HandleKind.INTERACTION, uid)
    assert (found.reasons, found.session_id) == (("max_age", "prompt"), first)
    assert (found.expires_at, found.expired) == (NOW + 600, False)
    # A later step that names no session keeps the one recorded; one that names it replaces it.
    assert interactions.finish(uid, {"login": "sub-1"}, now=NOW + 1)
    assert interactions.get(uid, now=NOW + 1).session_id == first  # type: ignore[union-attr]
    assert interactions.finish(uid, {"login": "sub-1"}, now=NOW + 2, session_id=second)
    assert interactions.get(uid, now=NOW + 2).session_id == second  # type: ignore[union-attr]
    assert not interactions.finish("not-a-uid", {}, now=NOW + 3)


def test_an_interaction_lifetime_must_be_positive(engine: Engine) -> None:
    assert InteractionStore(engine, HASHER, lifetime=0.5).lifetime == 0.5
    with pytest.raises(ValueError):
        InteractionStore(engine, HASHER, lifetime=0)


def test_finishing_or_consuming_one_interaction_leaves_the_others_alone(engine: Engine) -> None:
    interactions = InteractionStore(engine, HASHER, lifetime=600)
    mine = interactions.create("client-1", {}, prompt="login", now=NOW)
    other = interactions.create("client-1", {}, prompt="login", now=NOW)
    assert interactions.finish(mine, {"login": "sub-1"}, now=NOW + 1, prompt="consent")
    untouched = interactions.get(other, now=NOW + 1)
    assert untouched is not None
    assert (untouched.result, untouched.prompt) == (None, "login")
    assert interactions.consume(mine, now=NOW + 2) is not None
    still = interactions.get(other, now=NOW + 2)
    assert still is not None
    assert not still.consumed


def test_prune_keeps_an_expired_interaction_for_exactly_keep_expired_for(engine: Engine) -> None:
    interactions = InteractionStore(engine, HASHER, lifetime=600)
    interactions.create("client-1", {}, prompt="login", now=NOW)
    live = interactions.create("client-1", {}, prompt="login", now=NOW + 3000)
    assert interactions.prune(NOW + 600 + 3600) == 0
    assert interactions.prune(NOW + 600 + 3600.5) == 1
    assert interactions.get(live, now=NOW + 4200.5) is not None


def test_consent_is_remembered_and_widened(engine: Engine, subject: str) -> None:
    consents = ConsentStore(engine)
    assert not consents.covers(subject, "client-1", ["openid"], now=NOW)
    consents.remember(subject, "client-1", ["openid"], now=NOW)
    assert consents.covers(subject, "client-1", ["openid"], now=NOW)
    assert not consents.covers(subject, "client-1", ["openid", "email"], now=NOW)
    assert not consents.covers(subject, "client-2", ["openid"], now=NOW)
    merged = consents.remember(subject, "client-1", ["email"], now=NOW, expires_at=NOW + 10)
    assert merged == {"openid", "email"}
    assert consents.covers(subject, "client-1", ["openid", "email"], now=NOW + 9)
    assert consents.granted(subject, "client-1", now=NOW + 10) == frozenset()
    assert consents.forget(subject, "client-1")
    assert not consents.forget(subject, "client-1")


def test_consent_belongs_to_one_user_and_one_client(
    engine: Engine, subject: str, accounts: DatabaseAccountStore
) -> None:
    bob = accounts.create("bob", "correct horse").subject
    consents = ConsentStore(engine)
    consents.remember(subject, "client-1", ["openid"], now=NOW)
    consents.remember(bob, "client-1", ["email"], now=NOW)
    consents.remember(subject, "client-2", ["profile"], now=NOW)
    consents.remember(subject, "client-1", ["phone"], now=NOW + 1)  # widens alice's only
    assert consents.granted(subject, "client-1", now=NOW + 1) == {"openid", "phone"}
    assert consents.granted(bob, "client-1", now=NOW + 1) == {"email"}
    assert consents.granted(subject, "client-2", now=NOW + 1) == {"profile"}
    assert consents.forget(subject, "client-1")
    assert consents.granted(bob, "client-1", now=NOW + 1) == {"email"}
    assert consents.granted(subject, "client-2", now=NOW + 1) == {"profile"}


def test_a_consent_expires_as_asked_and_an_expired_one_is_not_widened(
    engine: Engine, subject: str
) -> None:
    consents = ConsentStore(engine)
    assert consents.remember(subject, "client-1", ["openid", "email"], now=NOW, expires_at=NOW + 5)
    assert consents.covers(subject, "client-1", ["email", "openid"], now=NOW + 4)
    assert consents.granted(subject, "client-1", now=NOW + 5) == frozenset()
    # Expired exactly now: what it held is not carried into the new consent.
    consents.remember(subject, "client-1", ["x"], now=NOW + 5, expires_at=NOW + 50)
    assert consents.remember(subject, "client-1", ["y"], now=NOW + 6) == {"x", "y"}
    consents.remember(subject, "client-1", ["z"], now=NOW + 20, expires_at=NOW + 20)
    assert consents.remember(subject, "client-1", ["w"], now=NOW + 20) == {"w"}
    with Session(engine) as session:
        row = session.scalars(select(ConsentRow).where(ConsentRow.subject == subject)).one()
        assert (row.created_at, row.updated_at) == (NOW, NOW + 20)


def test_concurrent_first_consents_are_all_kept(engine: Engine, subject: str) -> None:
    # Each thread's first look finds no row; the inserts that lose the race become updates.
    consents = ConsentStore(engine)
    counter = iter(range(8))
    lock = threading.Lock()

    def remember() -> frozenset[str]:
        with lock:
            scope = f"s{next(counter)}"
        return consents.remember(subject, "client-1", [scope], now=NOW)

    results = run_concurrently(8, remember)
    assert all(isinstance(r, frozenset) for r in results), results
    assert consents.granted(subject, "client-1", now=NOW) == {f"s{i}" for i in range(8)}
