"""What the authorization server signs: RFC 9068 access tokens.

No Starlette, SQLAlchemy or httpx here (tests/server/test_layout.py checks it).
"""
