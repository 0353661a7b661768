"""Framework adapters: ``fastapi``, ``starlette`` (ASGI) and ``flask``.

Each imports its framework explicitly; install ``sealring[fastapi]`` or ``sealring[flask]``.
They only translate requests and responses; the verification is :class:`AccessTokenVerifier`'s.
"""

__all__: list[str] = []  # nothing here: import the adapter module of your framework
