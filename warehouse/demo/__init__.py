"""A realistic, deterministic operational database for demos, tests and benchmarks.

``generate_demo_source`` writes four weeks of platform activity before an
anchor instant; each ``advance_demo_source`` step adds the next day the way a
live system would: new events, pending rows that complete, a renamed tier or
a changed agent, members that finally get registered, rows that commit late
and events that arrive days after they happened.
"""

from __future__ import annotations

from warehouse.demo.advance import advance_demo_source
from warehouse.demo.snapshot import generate_demo_source

__all__ = ["advance_demo_source", "generate_demo_source"]
