"""What the authorization server issues: RFC 9068 access tokens, ID tokens and opaque handles.

No Starlette, SQLAlchemy or httpx here (tests/server/test_layout.py checks it).
"""

__all__: list[str] = []  # the modules are the interface: import them by name
