"""Fixtures of the reliability tests (helpers live in ``reliability_helpers``: a module called
conftest would shadow tests/conftest.py)."""

from __future__ import annotations

import pytest
from reliability_helpers import WriteFaults


@pytest.fixture
def write_faults(monkeypatch):
    """Simulated disk faults in atomic writes (see :class:`reliability_helpers.WriteFaults`)."""
    return WriteFaults(monkeypatch)
