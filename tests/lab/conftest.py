"""pytest fixtures for lab tests: a fresh :class:`Lab` and the standard topology."""

from __future__ import annotations

import pytest

from tests.lab.netns import Lab, Topo, require_lab, topology


@pytest.fixture
def lab():
    """A Lab torn down after the test, pass or fail; skips where the lab cannot run."""
    require_lab()
    with Lab() as the_lab:
        yield the_lab


@pytest.fixture
def topo(lab: Lab) -> Topo:
    """The standard onprem -- cgw == wan == vgw -- vpc topology."""
    return topology(lab)
