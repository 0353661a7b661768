"""Starlette glue shared by the endpoints: reading forms, building responses, the error decorator,
and the request middleware.  The only place besides ``endpoints/`` and ``app.py`` that knows HTTP."""

__all__: list[str] = []  # the modules are the interface: import them by name
