"""IKEv2 key derivation (RFC 7296 §2.13, §2.14, §2.17, §2.18) against NIST vectors.

NIST CAVP SP 800-135 IKEv2 KDF vectors:
- HMAC-SHA1: the CAVP sample carried by libreswan (lib/libswan/ike_alg_test_prf.c,
  "CAVP: IKEv2 key derivation with HMAC-SHA1", and programs/cavp/test.acvp.ikev2.run,
  which adds DKM(Child SA) and DKM(Child SA D-H)).
- HMAC-SHA-256 and HMAC-SHA-384: the NIST samples carried by NSS
  (gtests/common/testvectors/ike-sha256-vectors.h and ike-sha384-vectors.h,
  "these vectors are from this NIST samples", cases 1 and 6-10).
DKM = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr); DKM(Child SA) = prf+(SK_d, Ni | Nr);
DKM(Child SA D-H) = prf+(SK_d, g^ir (new) | Ni | Nr), SK_d being the first
prf-key-size bytes of DKM.
"""

import pytest

from ikecore.constants import PrfId
from ikecore.crypto import (
    ChildKeys,
    CryptoError,
    IkeKeys,
    derive_child_keys,
    derive_ike_keys,
    get_prf,
    rekey_skeyseed,
    skeyseed,
)


def h(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


def concat(keys) -> bytes:
    return b"".join(getattr(keys, f) for f in keys.__dataclass_fields__)


# -- HMAC-SHA1, CAVP sample (libreswan) --------------------------------------

SHA1 = dict(
    ni=h("32b50d5f4a3763f3"),
    nr=h("9206a04b26564cb1"),
    gir=h("4b2c1f971981a8ad8d0abeafabf38cf7 5fc8349c148142465ed9c8b516b8be52"),
    gir_new=h("863f3c9d06efd39d2b907b97f8699e5d d5251ef64a2a176f36ee40c87d4f9330"),
    spi_i=h("34c9e7c188868785"),
    spi_r=h("3ff77d760d2b2199"),
    skeyseed=h("a9a7b222b59f8f48645f28a1db5b5f5d7479cba7"),
    dkm=h(
        "a14293677cc80ff8f9cc0eee30d895da 9d8f405666e30ef0dfcb63c634a46002"
        "a2a63080e514a062768b76606f9fa5e9 92204fc5a670bde3f10d6b027113936a"
        "5c55b648a194ae587b0088d52204b702 c979fa280870d2ed41efa9c549fd1119"
        "8af1670b143d384bd275c5f594cf266b 05ebadca855e4249520a441a81157435"
        "a7a56cc4"
    ),
    dkm_child=h(
        "8059e3ee8810e6c3a91bc8bcd2a7a411 51b8d0e6ae239c7b38093ad85ef4c581"
        "1a8e7b5d1cdabd9560b2d5e092d1f24e 2d4b85eccdf0ad0dc9abd94b51ee7181"
        "4ca6dbc8bb51b6309f5b9545c7eb35cf 5580b1e521a8fe20754a2d883ba0c2cf"
        "285f524aea6545b33106bc03e614296d 319d41d4b50b3f510b1c0a22f3e66499"
        "4d234cb4"
    ),
    dkm_child_dh=h(
        "bb43244c1860ad65ee1e211ffe8bb366 1750c8f89cb9f547df7f4fa61d373016"
        "28190e38c66232eab4b3ab14c400a519 7dd3730ed4820a8a10394d51e1c04000"
        "52f63ebd36b0e7ef53aaed31eba4a508 0d7d4b5666023a8bbb5ffb7857240f9a"
        "05884d1b7d2f933708450b7b3288f1fc 863ab49fa901227cffc06e27899c7054"
        "d56fd74c"
    ),
    skeyseed_rekey=h("63e81194946ebd05df7df5ebf5d8750056bf1f1d"),
)


def test_sha1_cavp_lengths():
    assert [len(SHA1[k]) for k in ("dkm", "dkm_child", "dkm_child_dh")] == [132] * 3


def test_sha1_cavp_skeyseed():
    prf = get_prf(PrfId.HMAC_SHA1)
    assert skeyseed(prf, SHA1["ni"], SHA1["nr"], SHA1["gir"]) == SHA1["skeyseed"]


def test_sha1_cavp_dkm_and_ike_keys():
    prf = get_prf(PrfId.HMAC_SHA1)
    seed = SHA1["ni"] + SHA1["nr"] + SHA1["spi_i"] + SHA1["spi_r"]
    dkm = SHA1["dkm"]
    assert prf.plus(SHA1["skeyseed"], seed, 132) == dkm
    # 132 bytes = SK_d 20 + SK_a 2x20 (HMAC-SHA1-96) + SK_e 2x16 (AES-128) + SK_p 2x20
    keys = derive_ike_keys(prf, SHA1["skeyseed"], SHA1["ni"], SHA1["nr"],
                           SHA1["spi_i"], SHA1["spi_r"], integ_key_size=20, encr_key_size=16)
    assert concat(keys) == dkm
    assert keys.sk_d == dkm[:20]
    assert (keys.sk_ai, keys.sk_ar) == (dkm[20:40], dkm[40:60])
    assert (keys.sk_ei, keys.sk_er) == (dkm[60:76], dkm[76:92])
    assert (keys.sk_pi, keys.sk_pr) == (dkm[92:112], dkm[112:132])


def test_sha1_cavp_child_keys():
    prf = get_prf(PrfId.HMAC_SHA1)
    sk_d = SHA1["dkm"][:20]
    # the whole DKM with an arbitrary split (2 x (36 + 30) = 132) ...
    keys = derive_child_keys(prf, sk_d, SHA1["ni"], SHA1["nr"], 36, 30)
    assert concat(keys) == SHA1["dkm_child"]
    # ... and a real one, AES-128-CBC + HMAC-SHA1-96, in RFC 7296 §2.17 order
    keys = derive_child_keys(prf, sk_d, SHA1["ni"], SHA1["nr"], 16, 20)
    d = SHA1["dkm_child"]
    assert (keys.encr_i, keys.integ_i, keys.encr_r, keys.integ_r) == (
        d[:16], d[16:36], d[36:52], d[52:72])
    with_dh = derive_child_keys(prf, sk_d, SHA1["ni"], SHA1["nr"], 36, 30, shared=SHA1["gir_new"])
    assert concat(with_dh) == SHA1["dkm_child_dh"]


def test_sha1_cavp_rekey_skeyseed():
    prf = get_prf(PrfId.HMAC_SHA1)
    sk_d = SHA1["dkm"][:20]
    assert rekey_skeyseed(prf, sk_d, SHA1["gir_new"], SHA1["ni"], SHA1["nr"]) == (
        SHA1["skeyseed_rekey"])


# -- HMAC-SHA-256 and HMAC-SHA-384, NIST samples (NSS) -----------------------

SHA256 = dict(
    ni=h("3f302be1abcb28e1"),
    nr=h("8c332ee006064c9b"),
    gir=h("0f4d257d7a58fc4545c7d7a88119eee5d5c9690c5b4c989171d3abbfd99d1d29"),
    gir_new=h("25f3b12d6f282739256e39bf54eda53b60ffcf379bb7bcc90c27b4c4c578616c"),
    spi_i=h("40dac39e1e1a8640"),
    spi_r=h("8619a1cf9a6e4c07"),
    skeyseed=h("5f00d1bd2c58ec224b1e6b71fa0f19a1faa7a193952c444411b47c1a9d8ba6fe"),
    dkm=h(
        "0b137d669b0947d7d026d593f0305ad401ff0c471357d695778a9c7f4b4869ece98aca531"
        "188d16041b3bb936d2dbb3b4993a6e768a809160de45d0283f273a6cdf6854379e31be72b"
        "8d3d1fa990cf9c5b015ca9f918a7df6253c958114a09d4e1c19bdcd4db14b29d98db1a74a"
        "d405c588662c14a04d0d36aa4ab55e90f8986d12d4aad"
    ),
    skeyseed_rekey=h("2d63f6debc92048b4fef3889c4c99ca67d6496e0fac14a2bca9a2d6566ff2398"),
)

SHA384 = dict(
    ni=h("fd1b572a8e735591"),
    nr=h("6013b0ef88dacd3d"),
    gir=h("d3288cd87565101e88fe3bad918f31939d8dd26ff1071f8b2d7f447524e58d7c"),
    gir_new=h("3358f620539473aee8d07e779764c4c6a9aabddc79a28e136b3bac021dbde44a"),
    spi_i=h("2116ad07ce61f749"),
    spi_r=h("24880e55f11a65b7"),
    skeyseed=h(
        "69fe7a1ac94adaeb711295f5fe004b1a8d6a0b65d05692758ce8ad2f7a45f59d7d0b596f5"
        "1f7dfcf3330061888f6a94f"
    ),
    dkm=h(
        "4f904c2025c90c817ea5ff9b662a6fdb445a73b57cdf09eacd379b95e1f03cacb04cd6dee"
        "da4f952191dd9bc1f7a9502471a648d74dc06d38112de48a42501f6b1a3ad55c2099cd9a6"
        "48e5f17e5bf3e34bf9b5953decb768a34f875fe2b78dca0c2fcca81ec1a412006dfaed38f"
        "a06882e61f4c148105fb8e231fdb33c4d484c001721d4"
    ),
    skeyseed_rekey=h(
        "e0548c1682e13bce454026b3b1bdf42985b24e4e7408095a7c529de38c3d1fcb04c9fe686"
        "8042a34c9614c6c99e3fcea"
    ),
)

NIST_SHA2 = [(PrfId.HMAC_SHA2_256, SHA256), (PrfId.HMAC_SHA2_384, SHA384)]
NIST_IDS = ["SHA2_256", "SHA2_384"]


@pytest.mark.parametrize("prf_id, v", NIST_SHA2, ids=NIST_IDS)
def test_sha2_nist_skeyseed(prf_id, v):  # NSS cases 6
    assert skeyseed(get_prf(prf_id), v["ni"], v["nr"], v["gir"]) == v["skeyseed"]


@pytest.mark.parametrize("prf_id, v", NIST_SHA2, ids=NIST_IDS)
def test_sha2_nist_dkm(prf_id, v):  # NSS cases 8, 9, 10: 132 bytes and prefixes
    prf = get_prf(prf_id)
    seed = v["ni"] + v["nr"] + v["spi_i"] + v["spi_r"]
    assert len(v["dkm"]) == 132
    for length in (132, prf.output_size, 15):
        assert prf.plus(v["skeyseed"], seed, length) == v["dkm"][:length]


@pytest.mark.parametrize("prf_id, v", NIST_SHA2, ids=NIST_IDS)
def test_sha2_nist_ike_keys(prf_id, v):
    """The IKE keys are consecutive slices of the same prf+ stream as DKM."""
    prf = get_prf(prf_id)
    # AES-128-GCM-16 IKE SA: no SK_a, SK_e = 16-byte key + 4-byte salt
    keys = derive_ike_keys(prf, v["skeyseed"], v["ni"], v["nr"], v["spi_i"], v["spi_r"],
                           integ_key_size=0, encr_key_size=20)
    assert (keys.sk_ai, keys.sk_ar) == (b"", b"")
    assert len(keys.sk_ei) == len(keys.sk_er) == 20
    assert len(keys.sk_d) == len(keys.sk_pi) == len(keys.sk_pr) == prf.key_size
    assert len(concat(keys)) >= 132 and concat(keys)[:132] == v["dkm"]


@pytest.mark.parametrize("prf_id, v", NIST_SHA2, ids=NIST_IDS)
def test_sha2_nist_rekey_skeyseed(prf_id, v):  # NSS cases 7
    prf = get_prf(prf_id)
    sk_d = v["dkm"][: prf.key_size]
    assert rekey_skeyseed(prf, sk_d, v["gir_new"], v["ni"], v["nr"]) == v["skeyseed_rekey"]


def test_sha256_nist_skeyseed_with_2048_bit_nonces():
    """NSS case 1: the largest nonces RFC 7296 §2.10 allows (256 bytes each)."""
    ni = h(
        "b1dee62505b47b223bae14ce7a5b757402ad1587511618d09f94950d47f1d8d4ce86aca12"
        "d78db9854d86019ad735757ae79d8932ac0c7db842c85060150ca875ea5d47e3cfcb2a059"
        "22ebb7959d49b9797a2289676ee79a1d9a18b790f87e4771ddaf4be3376057a553162f68f"
        "e429aca73b07234543801ba2122b1bde82251770d05df813cf556a11ca4dc43ffcb85a97d"
        "bed16e2fda6985e07e31be6364899e63c507c7c616e5eb7765a53560f76772de43918ba07"
        "badfe85244dcdcd917cb065afb60e3b7e68b54dd94bfc7c31c8b752892781ed3cc4b7f28f"
        "bc0ab9af908f5ae1f09f893f80100a7b3135993161b51fbba3bbb24b9f88c6147de82cd6f"
        "0"
    )
    nr = h(
        "f0acfef2ad1f7add0eaafda78c1cf1097d9fc91cb04a7c145069ac426fd164cbe661b1dd2"
        "df0fb84e19512181f0d8ea50b7860845f332757a8e56d2a3b7be436b5718a2d49baa996a4"
        "616684a208c2d611cd65e605dca6e3d3f116859b4410fe13679696bb2e23c08a40c7e1316"
        "d54b4c9c0286701c221151b3642cb4112ca1a53e0e597a7e29c634caed86ca3c31973d37b"
        "4c346134fd6784cd99913feedf3d29d89a0a02a5a750f02f5738109dcc670bb27701fb59f"
        "78e83b76860c3fec079a1fc8c937ddb58ae7500422b7e49ce63759c65b6bc439381d56bcc"
        "159edede894b073841036ebfa050a5b3e7c876a3f18def26b1768a263ac66c9d83b680eb5"
        "e"
    )
    assert len(ni) == len(nr) == 256
    gir = h("a1ff3dc6cf9b4c04709943cb4ca1f1789bcf360b03f1d027de3ae8ee039e9155")
    assert skeyseed(get_prf(PrfId.HMAC_SHA2_256), ni, nr, gir) == h(
        "750c5c94b9c2ec20b68033e024dadf0fa87e8b48c6561b21c72478451a06583d")


def test_sha384_nist_skeyseed_case_1():
    prf = get_prf(PrfId.HMAC_SHA2_384)
    gir = h("1724dbd893523764bfef8c6fa927856fccfb77ae254358cce29c2769a32915c1")
    assert skeyseed(prf, h("cec89d845add83ef"), h("cebd43ab71d17db9"), gir) == h(
        "6e4514610bf82d0ab7bf0260096f6146a153c712071abb633ced813c572156c783e36874a"
        "65a64690ca701d40d56ea18")


# -- structure ------------------------------------------------------------------

def test_derivations_follow_their_definitions():
    """Spelled out with prf and prf+ (RFC 7296 §2.14, §2.17, §2.18), any PRF."""
    prf = get_prf(PrfId.HMAC_SHA2_512)
    ni, nr, spi_i, spi_r = b"I" * 32, b"R" * 32, b"i" * 8, b"r" * 8
    gir, gir_new = b"G" * 256, b"N" * 256
    seed = skeyseed(prf, ni, nr, gir)
    assert seed == prf(ni + nr, gir)
    keys = derive_ike_keys(prf, seed, ni, nr, spi_i, spi_r, 64, 32)
    stream = prf.plus(seed, ni + nr + spi_i + spi_r, 64 * 3 + 64 * 2 + 32 * 2)
    assert concat(keys) == stream
    assert rekey_skeyseed(prf, keys.sk_d, gir_new, ni, nr) == prf(keys.sk_d, gir_new + ni + nr)
    child = derive_child_keys(prf, keys.sk_d, ni, nr, 36, 0)
    assert concat(child) == prf.plus(keys.sk_d, ni + nr, 72)
    assert child.integ_i == child.integ_r == b""
    child_pfs = derive_child_keys(prf, keys.sk_d, ni, nr, 32, 64, shared=gir_new)
    assert concat(child_pfs) == prf.plus(keys.sk_d, gir_new + ni + nr, 192)


def test_keys_stay_out_of_repr():
    prf = get_prf(PrfId.HMAC_SHA2_256)
    ike = derive_ike_keys(prf, b"s" * 32, b"n" * 16, b"m" * 16, b"i" * 8, b"r" * 8, 32, 16)
    child = derive_child_keys(prf, ike.sk_d, b"n" * 16, b"m" * 16, 16, 32)
    assert isinstance(ike, IkeKeys) and isinstance(child, ChildKeys)
    for obj in (ike, child):
        assert "redacted" in repr(obj)
        assert ike.sk_d.hex() not in repr(obj) and str(ike.sk_d) not in repr(obj)


def test_caller_errors():
    prf = get_prf(PrfId.HMAC_SHA1)
    with pytest.raises(CryptoError):
        derive_ike_keys(prf, b"s" * 20, b"n" * 16, b"m" * 16, b"i" * 4, b"r" * 8, 20, 16)
    with pytest.raises(CryptoError):
        derive_ike_keys(prf, b"s" * 20, b"n" * 16, b"m" * 16, b"i" * 8, b"r" * 8, -1, 16)
    with pytest.raises(CryptoError):  # more than 255 prf+ blocks (RFC 7296 §2.13)
        derive_child_keys(prf, b"d" * 20, b"n" * 16, b"m" * 16, 2000, 1000)
