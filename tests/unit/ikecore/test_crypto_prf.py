"""Known answers for the PRFs and integrity algorithms, typed in from the standards.

Sources: RFC 4868 §2.7.1 (PRF-HMAC-SHA-256/384/512 test cases), RFC 4868
§2.7.2 (truncated AUTH test cases), RFC 2202 §3 test cases 1 and 3 (which
RFC 2404 §3 uses for HMAC-SHA-1-96). Carried over from strongSwan's
test_vectors/sha2_hmac.c and sha1_hmac.c, which quote those RFCs.
"""

import pytest

from ikecore.constants import IntegId, PrfId
from ikecore.crypto import CryptoError, UnsupportedAlgorithm, get_integ, get_prf


def h(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


KEY_0B_20 = b"\x0b" * 20
KEY_AA_20 = b"\xaa" * 20
KEY_01_25 = bytes(range(1, 26))
KEY_AA_131 = b"\xaa" * 131
DATA_DD_50 = b"\xdd" * 50
DATA_CD_50 = b"\xcd" * 50
LARGE_KEY_DATA = b"Test Using Larger Than Block-Size Key - Hash Key First"
LARGE_KEY_LARGE_DATA = (
    b"This is a test using a larger than block-size key and a larger than block-size data. "
    b"The key needs to be hashed before being used by the HMAC algorithm."
)

# (prf id, key, data, expected output); test case numbers of RFC 4868 §2.7.1.
PRF_VECTORS = [
    # PRF-1
    (PrfId.HMAC_SHA2_256, KEY_0B_20, b"Hi There",
     h("b0344c61d8db38535ca8afceaf0bf12b 881dc200c9833da726e9376c2e32cff7")),
    (PrfId.HMAC_SHA2_384, KEY_0B_20, b"Hi There",
     h("afd03944d84895626b0825f4ab46907f 15f9dadbe4101ec682aa034c7cebc59c"
       "faea9ea9076ede7f4af152e8b2fa9cb6")),
    (PrfId.HMAC_SHA2_512, KEY_0B_20, b"Hi There",
     h("87aa7cdea5ef619d4ff0b4241a1d6cb0 2379f4e2ce4ec2787ad0b30545e17cde"
       "daa833b7d6b8a702038b274eaea3f4e4 be9d914eeb61f1702e696c203a126854")),
    # PRF-3
    (PrfId.HMAC_SHA2_256, KEY_AA_20, DATA_DD_50,
     h("773ea91e36800e46854db8ebd09181a7 2959098b3ef8c122d9635514ced565fe")),
    (PrfId.HMAC_SHA2_384, KEY_AA_20, DATA_DD_50,
     h("88062608d3e6ad8a0aa2ace014c8a86f 0aa635d947ac9febe83ef4e55966144b"
       "2a5ab39dc13814b94e3ab6e101a34f27")),
    (PrfId.HMAC_SHA2_512, KEY_AA_20, DATA_DD_50,
     h("fa73b0089d56a284efb0f0756c890be9 b1b5dbdd8ee81a3655f83e33b2279d39"
       "bf3e848279a722c806b485a47e67c807 b946a337bee8942674278859e13292fb")),
    # PRF-4
    (PrfId.HMAC_SHA2_256, KEY_01_25, DATA_CD_50,
     h("82558a389a443c0ea4cc819899f2083a 85f0faa3e578f8077a2e3ff46729665b")),
    (PrfId.HMAC_SHA2_384, KEY_01_25, DATA_CD_50,
     h("3e8a69b7783c25851933ab6290af6ca7 7a9981480850009cc5577c6e1f573b4e"
       "6801dd23c4a7d679ccf8a386c674cffb")),
    (PrfId.HMAC_SHA2_512, KEY_01_25, DATA_CD_50,
     h("b0ba465637458c6990e5a8c5f61d4af7 e576d97ff94b872de76f8050361ee3db"
       "a91ca5c11aa25eb4d679275cc5788063 a5f19741120c4f2de2adebeb10a298dd")),
    # PRF-5 (key longer than the hash block)
    (PrfId.HMAC_SHA2_256, KEY_AA_131, LARGE_KEY_DATA,
     h("60e431591ee0b67f0d8a26aacbf5b77f 8e0bc6213728c5140546040f0ee37f54")),
    (PrfId.HMAC_SHA2_384, KEY_AA_131, LARGE_KEY_DATA,
     h("4ece084485813e9088d2c63a041bc5b4 4f9ef1012a2b588f3cd11f05033ac4c6"
       "0c2ef6ab4030fe8296248df163f44952")),
    (PrfId.HMAC_SHA2_512, KEY_AA_131, LARGE_KEY_DATA,
     h("80b24263c7c1a3ebb71493c1dd7be8b4 9b46d1f41b4aeec1121b013783f8f352"
       "6b56d037e05f2598bd0fd2215d6a1e52 95e64f73f63f0aec8b915a985d786598")),
    # PRF-6 (long key, long data)
    (PrfId.HMAC_SHA2_256, KEY_AA_131, LARGE_KEY_LARGE_DATA,
     h("9b09ffa71b942fcb27635fbcd5b0e944 bfdc63644f0713938a7f51535c3a35e2")),
    (PrfId.HMAC_SHA2_384, KEY_AA_131, LARGE_KEY_LARGE_DATA,
     h("6617178e941f020d351e2f254e8fd32c 602420feb0b8fb9adccebb82461e99c5"
       "a678cc31e799176d3860e6110c46523e")),
    (PrfId.HMAC_SHA2_512, KEY_AA_131, LARGE_KEY_LARGE_DATA,
     h("e37b6a775dc87dbaa4dfa9f96e5e3ffd debd71f8867289865df5a32d20cdc944"
       "b6022cac3c4982b10d5eeb55c3e4de15 134676fb6de0446065c97440fa8c6a58")),
    # RFC 2202 §3 test cases 1 and 3 (HMAC-SHA-1)
    (PrfId.HMAC_SHA1, KEY_0B_20, b"Hi There", h("b617318655057264e28bc0b6fb378c8ef146be00")),
    (PrfId.HMAC_SHA1, KEY_AA_20, DATA_DD_50, h("125d7342b9ac11cd91a39af48aa17b4f63f175d3")),
]


@pytest.mark.parametrize("prf_id, key, data, expected", PRF_VECTORS)
def test_prf_known_answers(prf_id, key, data, expected):
    assert get_prf(prf_id)(key, data) == expected


# (integ id, key, data, expected ICV): RFC 4868 §2.7.2.1-2.7.2.3 AUTH test
# cases 1-3 (keys of the full hash length), and RFC 2202 §3 cases 1 and 3
# truncated to 96 bits as RFC 2404 prescribes.
AUTH_VECTORS = [
    (IntegId.HMAC_SHA2_256_128, b"\x0b" * 32, b"Hi There", h("198a607eb44bfbc69903a0f1cf2bbdc5")),
    (IntegId.HMAC_SHA2_384_192, b"\x0b" * 48, b"Hi There",
     h("b6a8d5636f5c6a7224f9977dcf7ee6c7 fb6d0c48cbdee973")),
    (IntegId.HMAC_SHA2_512_256, b"\x0b" * 64, b"Hi There",
     h("637edc6e01dce7e6742a99451aae82df 23da3e92439e590e43e761b33e910fb8")),
    (IntegId.HMAC_SHA2_256_128, b"Jefe" * 8, b"what do ya want for nothing?",
     h("167f928588c5cc2eef8e3093caa0e87c")),
    (IntegId.HMAC_SHA2_384_192, b"Jefe" * 12, b"what do ya want for nothing?",
     h("2c7353974f1842fd66d53c452ca42122 b28c0b594cfb184d")),
    (IntegId.HMAC_SHA2_512_256, b"Jefe" * 16, b"what do ya want for nothing?",
     h("cb370917ae8a7ce28cfd1d8f4705d614 1c173b2a9362c15df235dfb251b15454")),
    (IntegId.HMAC_SHA2_256_128, b"\xaa" * 32, DATA_DD_50, h("cdcb1220d1ecccea91e53aba3092f962")),
    (IntegId.HMAC_SHA2_384_192, b"\xaa" * 48, DATA_DD_50,
     h("809f439be00274321d4a538652164b53 554a508184a0c316")),
    (IntegId.HMAC_SHA2_512_256, b"\xaa" * 64, DATA_DD_50,
     h("2ee7acd783624ca9398710f3ee05ae41 b9f9b0510c87e49e586cc9bf961733d8")),
    (IntegId.HMAC_SHA1_96, KEY_0B_20, b"Hi There", h("b617318655057264e28bc0b6")),
    (IntegId.HMAC_SHA1_96, KEY_AA_20, DATA_DD_50, h("125d7342b9ac11cd91a39af4")),
]


@pytest.mark.parametrize("integ_id, key, data, icv", AUTH_VECTORS)
def test_integ_known_answers(integ_id, key, data, icv):
    integ = get_integ(integ_id)
    assert integ.sign(key, data) == icv
    assert integ.verify(key, data, icv)
    assert not integ.verify(key, data + b"x", icv)
    assert not integ.verify(key, data, icv[:-1])  # truncated ICV
    assert not integ.verify(key, data, bytes([icv[0] ^ 1]) + icv[1:])


@pytest.mark.parametrize(
    "integ_id, key_size, icv_size",
    [
        (IntegId.HMAC_SHA1_96, 20, 12),  # RFC 2404 §2-3
        (IntegId.HMAC_SHA2_256_128, 32, 16),  # RFC 4868 §2.1
        (IntegId.HMAC_SHA2_384_192, 48, 24),
        (IntegId.HMAC_SHA2_512_256, 64, 32),
    ],
)
def test_integ_sizes(integ_id, key_size, icv_size):
    integ = get_integ(integ_id)
    assert (integ.id, integ.key_size, integ.icv_size) == (integ_id, key_size, icv_size)
    with pytest.raises(CryptoError):
        integ.sign(b"k" * (key_size - 1), b"data")


@pytest.mark.parametrize(
    "prf_id, size",
    [(PrfId.HMAC_SHA1, 20), (PrfId.HMAC_SHA2_256, 32), (PrfId.HMAC_SHA2_384, 48),
     (PrfId.HMAC_SHA2_512, 64)],
)
def test_prf_sizes_and_cache(prf_id, size):
    prf = get_prf(prf_id)
    assert (prf.id, prf.key_size, prf.output_size) == (prf_id, size, size)
    assert get_prf(prf_id) is prf
    assert get_prf(int(prf_id)) is prf


def test_prf_plus_definition():
    """RFC 7296 §2.13: T1 = prf(K, S|0x01), Tn = prf(K, Tn-1|S|n), output T1|T2|..."""
    prf = get_prf(PrfId.HMAC_SHA2_256)
    key, seed = b"K" * 32, b"seed"
    t1 = prf(key, seed + b"\x01")
    t2 = prf(key, t1 + seed + b"\x02")
    t3 = prf(key, t2 + seed + b"\x03")
    assert prf.plus(key, seed, 70) == (t1 + t2 + t3)[:70]
    assert prf.plus(key, seed, 0) == b""


def test_prf_plus_block_limit():
    prf = get_prf(PrfId.HMAC_SHA1)
    assert len(prf.plus(b"k", b"s", 255 * 20)) == 255 * 20
    with pytest.raises(CryptoError):
        prf.plus(b"k", b"s", 255 * 20 + 1)
    with pytest.raises(CryptoError):
        prf.plus(b"k", b"s", -1)


@pytest.mark.parametrize("prf_id", [PrfId.HMAC_MD5, PrfId.AES128_XCBC, PrfId.AES128_CMAC, 99])
def test_prf_unsupported(prf_id):
    with pytest.raises(UnsupportedAlgorithm):
        get_prf(prf_id)


@pytest.mark.parametrize(
    "integ_id", [IntegId.NONE, IntegId.HMAC_MD5_96, IntegId.AES_XCBC_96, IntegId.HMAC_SHA1_160, 99]
)
def test_integ_unsupported(integ_id):
    with pytest.raises(UnsupportedAlgorithm):
        get_integ(integ_id)
