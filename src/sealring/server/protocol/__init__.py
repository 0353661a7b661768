"""The RFC rules of the authorization server as plain functions and classes.

Nothing here imports Starlette, SQLAlchemy or httpx (tests/server/test_layout.py checks it): values
in, a result or an :class:`~sealring.server.errors.OAuthError` out; stores are injected.
"""

__all__: list[str] = []  # the modules are the interface: import them by name
