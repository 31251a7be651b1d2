"""No CryptographyDeprecationWarning from a handshake with any MODP group.

`cryptography` deprecated its finite-field DH in version 49 (a
CryptographyDeprecationWarning on every use, which reached vgw's own log) and
announced its removal; vgw's MODP groups use gmpy2 instead (ikecore/crypto/dh.py).
The warning is an error here, and cryptography's FFDH entry points are wrapped so
that they warn as version 49 and later do, whatever version runs the test: a
MODP handshake that touched them would fail on any version. (pyproject.toml also
makes the warning an error in every test.)
"""

import warnings

import pytest
from cryptography.hazmat.primitives.asymmetric import dh as crypto_dh
from cryptography.utils import CryptographyDeprecationWarning

from ikecore.crypto import dh as vgw_dh
from .ikepair import IkePair, settings_a, settings_b

MODP_GROUPS = (2, 5, 14, 15, 16, 17, 18, 22, 23, 24)
FFDH_ENTRY_POINTS = ("DHParameterNumbers", "DHPublicNumbers", "DHPrivateNumbers", "generate_parameters")


@pytest.fixture
def ffdh_warns(monkeypatch):
    """cryptography's FFDH as version 49 and later behave: a warning on use."""
    def warning(name, real):
        def wrapped(*args, **kw):
            warnings.warn("Diffie-Hellman over finite fields (FFDH) is deprecated",
                          CryptographyDeprecationWarning, stacklevel=2)
            return real(*args, **kw)
        return wrapped
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # cryptography >= 49 warns when they are looked up
        for name in FFDH_ENTRY_POINTS:
            monkeypatch.setattr(crypto_dh, name, warning(name, getattr(crypto_dh, name)))
    vgw_dh._get_dh_group.cache_clear()     # groups made anew, under the wrapped entry points
    yield
    vgw_dh._get_dh_group.cache_clear()


@pytest.mark.parametrize("group", MODP_GROUPS)
def test_modp_handshake_and_pfs_rekey_warn_nothing(group, ffdh_warns):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pair = IkePair(settings_a(phase1_dh_groups=(group,), phase2_dh_groups=(group,)),
                       settings_b(phase1_dh_groups=(group,), phase2_dh_groups=(group,)))
        pair.handshake()
        assert pair.a.sa.established and pair.b.sa.established
        [child] = pair.a.child_ups
        pair.a.endpoint.rekey("child", pair.now)    # a CHILD rekey with a KE of the group (PFS)
        pair.run()
        assert [ev.replaces for ev in pair.a.child_ups[1:]] == [child.spi_in]


def test_the_wrapper_catches_ffdh_use(ffdh_warns):
    """The fixture can fail: cryptography's FFDH under it raises the warning."""
    p, g, _ = vgw_dh._MODP_PARAMS[14]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(CryptographyDeprecationWarning):
            crypto_dh.DHParameterNumbers(p, g)
