"""The grant check: AWS calls recorded per function (calls.py) held against the synthesized roles (policy.py).

`REPORT` holds the last check's summary (actions called, grants nothing called), printed at the end of the
pytest session (tests/conftest.py).
"""

from __future__ import annotations

REPORT: list[str] = []
