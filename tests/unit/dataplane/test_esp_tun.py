"""TunDevice argument checks (no root needed: they fail before /dev/net/tun is opened)."""

import pytest

from dataplane.tun import TunDevice


@pytest.mark.parametrize("name", ["", "a" * 16, "has space", "a/b"])
def test_bad_names(name):
    with pytest.raises(ValueError, match="15"):
        TunDevice.create(name)


@pytest.mark.parametrize("mtu", [0, 67, 65536])
def test_bad_mtu(mtu):
    with pytest.raises(ValueError, match="MTU"):
        TunDevice.create("vgwx0", mtu=mtu)
