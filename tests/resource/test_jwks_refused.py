"""Issue 12 item 2: a JWK Set the client refuses is logged and counted, not kept quiet."""

from __future__ import annotations

import pytest

from sealring.jose.jwk import JWK
from sealring.resource import JWKSClient
from sealring.resource.jwks._policy import KEY_SETS_REFUSED
from tests.helpers.clock import FakeClock
from tests.helpers.issuer import IssuerServer
from tests.helpers.tokens import new_key
from tests.helpers.waiting import eventually


def test_a_refused_key_set_is_logged_and_counted_not_quiet(
    issuer_server: IssuerServer, clock: FakeClock, key: JWK, caplog: pytest.LogCaptureFixture
) -> None:
    """A JWK Set over the 100-key cap kept the stale set in use silently (401s for minutes)."""
    issuer_server.publish(key, max_age=60)
    before = KEY_SETS_REFUSED.labels("invalid_key_set")._value.get()
    with JWKSClient(issuer_server.jwks_uri, clock=clock) as client:
        client.get_key_set()
        issuer_server.publish(key, *(new_key(kid=f"n{i}") for i in range(100)), max_age=60)
        clock.advance(61)
        with caplog.at_level("ERROR", logger="sealring.resource"):
            assert "k1" in client.get_key_set()  # the last good set, within stale-if-error
            # The refresh runs in the background: wait for its verdict.
            eventually(lambda: KEY_SETS_REFUSED.labels("invalid_key_set")._value.get() > before)
    refused = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(refused) == 1
    message = refused[0].getMessage()
    assert message.startswith(
        f"JWK Set from {issuer_server.jwks_uri} refused, keeping the last good one: "
    )
    assert "more than 100 keys" in message
    assert KEY_SETS_REFUSED.labels("invalid_key_set")._value.get() == before + 1
