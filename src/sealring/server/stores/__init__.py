"""Persistence: one repository per table, synchronous (the endpoints call them from a worker thread).

Nothing here imports an endpoint; the protocol rules receive these stores through small protocols.
"""

__all__: list[str] = []  # the modules are the interface: import them by name
