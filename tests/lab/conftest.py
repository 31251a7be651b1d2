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


@pytest.fixture
def bgp_lab():
    """A Lab for dynamic-routing tests: also needs FRR and BIRD 2 (skips, or fails
    under CI, without them)."""
    from tests.lab.bgplab import bgp_unavailable_reason

    require_lab(more=bgp_unavailable_reason)
    with Lab() as the_lab:
        yield the_lab
