"""DH groups: constants checked for typos, known answers, RFC 6989 rejections.

Known answers: RFC 5903 §8.1-8.3 (groups 19-21) and RFC 5114 Appendix A.1-A.3
(groups 22-24), typed in from the RFC texts (RFC 5903 §8 as quoted by several
public test suites). The typed-in primes are checked structurally: RFC 2409 /
RFC 3526 primes are safe primes, RFC 5114 groups have a prime q dividing p-1
with g^q = 1, each of the stated size.
"""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ikecore.constants import DhId
from ikecore.crypto import (
    SUPPORTED_DH_GROUPS,
    CryptoError,
    InvalidPublicValue,
    UnsupportedAlgorithm,
    get_dh_group,
)
from ikecore.crypto.dh import _MODP_PARAMS


def h(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


def hint(text: str) -> int:
    return int.from_bytes(h(text), "big")


# -- Miller-Rabin, written here so that the check does not trust the library --

def is_probable_prime(n: int, bases) -> bool:
    if n < 2:
        return False
    for small in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37):
        if n % small == 0:
            return n == small
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for a in bases:
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def test_miller_rabin_itself():
    assert is_probable_prime(2**127 - 1, (2, 3, 5))  # Mersenne prime M127
    assert is_probable_prime(2**521 - 1, (2, 3))  # M521, the P-521 field prime
    assert not is_probable_prime((2**127 - 1) * (2**61 - 1), (2,))
    # Strong pseudoprimes show the rounds really run: 1373653 = 829 * 1657
    # fools bases 2 and 3 but not 5; 3215031751 = 151 * 751 * 28351 fools
    # 2, 3, 5 and 7 but not 11.
    assert is_probable_prime(1373653, (2, 3))
    assert not is_probable_prime(1373653, (2, 3, 5))
    assert is_probable_prime(3215031751, (2, 3, 5, 7))
    assert not is_probable_prime(3215031751, (2, 3, 5, 7, 11))


SAFE_PRIME_GROUPS = {  # id: (bits, source)
    DhId.MODP1024: (1024, "RFC 2409 §6.2"),
    DhId.MODP1536: (1536, "RFC 3526 §2"),
    DhId.MODP2048: (2048, "RFC 3526 §3"),
    DhId.MODP3072: (3072, "RFC 3526 §4"),
    DhId.MODP4096: (4096, "RFC 3526 §5"),
    DhId.MODP6144: (6144, "RFC 3526 §6"),
    DhId.MODP8192: (8192, "RFC 3526 §7"),
}


@pytest.mark.parametrize("dh_id", list(SAFE_PRIME_GROUPS), ids=lambda d: d.name)
def test_safe_primes_are_safe_primes(dh_id):
    bits, _source = SAFE_PRIME_GROUPS[dh_id]
    p, g, q = _MODP_PARAMS[dh_id]
    assert (p.bit_length(), g, q) == (bits, 2, None)
    # These primes all start and end with 64 one bits (RFC 3526 §2-7 formulas).
    assert p >> (bits - 64) == 2**64 - 1 and p & (2**64 - 1) == 2**64 - 1
    # Miller-Rabin on (p-1)/2 and on p; one base for the big ones (a typo'd
    # number passing even one round is out of the question), two for the rest.
    bases = (2,) if bits > 4096 else (2, 3)
    assert is_probable_prime((p - 1) // 2, bases)
    assert is_probable_prime(p, bases)


RFC5114_GROUPS = {  # id: (p bits, q bits), RFC 5114 §2.1-2.3
    DhId.MODP1024_160: (1024, 160),
    DhId.MODP2048_224: (2048, 224),
    DhId.MODP2048_256: (2048, 256),
}


@pytest.mark.parametrize("dh_id", list(RFC5114_GROUPS), ids=lambda d: d.name)
def test_rfc5114_groups_structure(dh_id):
    p_bits, q_bits = RFC5114_GROUPS[dh_id]
    p, g, q = _MODP_PARAMS[dh_id]
    assert (p.bit_length(), q.bit_length()) == (p_bits, q_bits)
    assert is_probable_prime(q, (2, 3, 5, 7, 11))
    assert is_probable_prime(p, (2, 3))
    assert (p - 1) % q == 0
    assert 1 < g < p - 1 and pow(g, q, p) == 1


# -- known answers ------------------------------------------------------------

# RFC 5903 §8: (i, g^i = gix||giy, r, g^r = grx||gry, girx)
RFC5903 = {
    DhId.ECP256: (  # §8.1
        "C88F01F5 10D9AC3F 70A292DA A2316DE5 44E9AAB8 AFE84049 C62A9C57 862D1433",
        "DAD0B653 94221CF9 B051E1FE CA5787D0 98DFE637 FC90B9EF 945D0C37 72581180"
        "5271A046 1CDB8252 D61F1C45 6FA3E59A B1F45B33 ACCF5F58 389E0577 B8990BB3",
        "C6EF9C5D 78AE012A 011164AC B397CE20 88685D8F 06BF9BE0 B283AB46 476BEE53",
        "D12DFB52 89C8D4F8 1208B702 70398C34 2296970A 0BCCB74C 736FC755 4494BF63"
        "56FBF3CA 366CC23E 8157854C 13C58D6A AC23F046 ADA30F83 53E74F33 039872AB",
        "D6840F6B 42F6EDAF D13116E0 E1256520 2FEF8E9E CE7DCE03 812464D0 4B9442DE",
    ),
    DhId.ECP384: (  # §8.2
        "099F3C70 34D4A2C6 99884D73 A375A67F 7624EF7C 6B3C0F16 0647B674 14DCE655"
        "E35B5380 41E649EE 3FAEF896 783AB194",
        "667842D7 D180AC2C DE6F74F3 7551F557 55C7645C 20EF73E3 1634FE72 B4C55EE6"
        "DE3AC808 ACB4BDB4 C88732AE E95F41AA"
        "9482ED1F C0EEB9CA FC498462 5CCFC23F 65032149 E0E144AD A0241815 35A0F38E"
        "EB9FCFF3 C2C947DA E69B4C63 4573A81C",
        "41CB0779 B4BDB85D 47846725 FBEC3C94 30FAB46C C8DC5060 855CC9BD A0AA2942"
        "E0308312 916B8ED2 960E4BD5 5A7448FC",
        "E558DBEF 53EECDE3 D3FCCFC1 AEA08A89 A987475D 12FD950D 83CFA417 32BC509D"
        "0D1AC43A 0336DEF9 6FDA41D0 774A3571"
        "DCFBEC7A ACF31964 72169E83 8430367F 66EEBE3C 6E70C416 DD5F0C68 759DD1FF"
        "F83FA401 42209DFF 5EAAD96D B9E6386C",
        "11187331 C279962D 93D60424 3FD592CB 9D0A926F 422E4718 7521287E 7156C5C4"
        "D6031355 69B9E9D0 9CF5D4A2 70F59746",
    ),
    DhId.ECP521: (  # §8.3
        "0037ADE9 319A89F4 DABDB3EF 411AACCC A5123C61 ACAB57B5 393DCE47 608172A0"
        "95AA85A3 0FE1C295 2C6771D9 37BA9777 F5957B26 39BAB072 462F68C2 7A57382D"
        "4A52",
        "0015417E 84DBF28C 0AD3C278 713349DC 7DF153C8 97A1891B D98BAB43 57C9ECBE"
        "E1E3BF42 E00B8E38 0AEAE57C 2D107564 94188594 2AF5A7F4 601723C4 195D176C"
        "ED3E"
        "017CAE20 B6641D2E EB695786 D8C94614 6239D099 E18E1D5A 514C739D 7CB4A10A"
        "D8A78801 5AC405D7 799DC75E 7B7D5B6C F2261A6A 7F150743 8BF01BEB 6CA3926F"
        "9582",
        "0145BA99 A847AF43 793FDD0E 872E7CDF A16BE30F DC780F97 BCCC3F07 8380201E"
        "9C677D60 0B343757 A3BDBF2A 3163E4C2 F869CCA7 458AA4A4 EFFC311F 5CB15168"
        "5EB9",
        "00D0B397 5AC4B799 F5BEA16D 5E13E9AF 971D5E9B 984C9F39 728B5E57 39735A21"
        "9B97C356 436ADC6E 95BB0352 F6BE64A6 C2912D4E F2D0433C ED2B6171 640012D9"
        "460F"
        "015C6822 6383956E 3BD066E7 97B623C2 7CE0EAC2 F551A10C 2C724D98 52077B87"
        "220B6536 C5C408A1 D2AEBB8E 86D678AE 49CB5709 1F473229 6579AB44 FCD17F0F"
        "C56A",
        "01144C7D 79AE6956 BC8EDB8E 7C787C45 21CB086F A64407F9 7894E5E6 B2D79B04"
        "D1427E73 CA4BAA24 0A347868 59810C06 B3C715A3 A8CC3151 F2BEE417 996D19F3"
        "DDEA",
    ),
}


@pytest.mark.parametrize("dh_id", list(RFC5903), ids=lambda d: d.name)
def test_rfc5903_vectors(dh_id):
    i, gi, r, gr, girx = RFC5903[dh_id]
    group = get_dh_group(dh_id)
    initiator = group.from_private_int(hint(i))
    responder = group.from_private_int(hint(r))
    # RFC 5903 §7: KE data is x || y, without the 0x04 octet of SEC 1.
    assert initiator.public_bytes == h(gi)
    assert responder.public_bytes == h(gr)
    assert len(h(gi)) == group.public_size
    # RFC 5903 §7: the shared secret is the x coordinate of g^ir.
    assert initiator.shared_secret(h(gr)) == h(girx)
    assert responder.shared_secret(h(gi)) == h(girx)


# RFC 5114 Appendix A.1-A.3: (xA, yA, xB, yB, Z)
RFC5114 = {
    DhId.MODP1024_160: (  # A.1
        "B9A3B3AE 8FEFC1A2 93049650 7086F845 5D48943E",
        "2A853B3D 92197501"
        "B9015B2D EB3ED84F 5E021DCC 3E52F109 D3273D2B 7521281C"
        "BABE0E76 FF5727FA 8ACCE269 56BA9A1F CA26F202 28D8693F"
        "EB10841D 84A73600 54ECE5A7 F5B7A61A D3DFB3C6 0D2E4310"
        "6D8727DA 37DF9CCE 95B47875 5D06BCEA 8F9D4596 5F75A5F3"
        "D1DF3701 165FC9E5 0C4279CE B07F9895 40AE96D5 D88ED776",
        "9392C9F9 EB6A7A6A 9022F7D8 3E7223C6 835BBDDA",
        "717A6CB0 53371FF4"
        "A3B93294 1C1E5663 F861A1D6 AD34AE66 576DFB98 F6C6CBF9"
        "DDD5A56C 7833F6BC FDFF0955 82AD868E 440E8D09 FD769E3C"
        "ECCDC3D3 B1E4CFA0 57776CAA F9739B6A 9FEE8E74 11F8D6DA"
        "C09D6A4E DB46CC2B 5D520309 0EAE6126 311E53FD 2C14B574"
        "E6A3109A 3DA1BE41 BDCEAA18 6F5CE067 16A2B6A0 7B3C33FE",
        "5C804F45 4D30D9C4"
        "DF85271F 93528C91 DF6B48AB 5F80B3B5 9CAAC1B2 8F8ACBA9"
        "CD3E39F3 CB614525 D9521D2E 644C53B8 07B810F3 40062F25"
        "7D7D6FBF E8D5E8F0 72E9B6E9 AFDA9413 EAFB2E8B 0699B1FB"
        "5A0CACED DEAEAD7E 9CFBB36A E2B42083 5BD83A19 FB0B5E96"
        "BF8FA4D0 9E345525 167ECD91 55416F46 F408ED31 B63C6E6D",
    ),
    DhId.MODP2048_224: (  # A.2
        "22E62601 DBFFD067 08A680F7 47F361F7 6D8F4F72 1A0548E4 83294B0C",
        "1B3A6345 1BD886E6 99E67B49 4E288BD7"
        "F8E0D370 BADDA7A0 EFD2FDE7 D8F66145 CC9F2804 19975EB8"
        "08877C8A 4C0C8E0B D48D4A54 01EB1E87 76BFEEE1 34C03831"
        "AC273CD9 D635AB0C E006A42A 887E3F52 FB8766B6 50F38078"
        "BC8EE858 0CEFE243 968CFC4F 8DC3DB08 4554171D 41BF2E86"
        "1B7BB4D6 9DD0E01E A387CBAA 5CA672AF CBE8BDB9 D62D4CE1"
        "5F17DD36 F91ED1EE DD65CA4A 06455CB9 4CD40A52 EC360E84"
        "B3C926E2 2C4380A3 BF309D56 849768B7 F52CFDF6 55FD053A"
        "7EF70697 9E7E5806 B17DFAE5 3AD2A5BC 568EBB52 9A7A61D6"
        "8D256F8F C97C074A 861D827E 2EBC8C61 34553115 B70E7103"
        "920AA16D 85E52BCB AB8D786A 68178FA8 FF7C2F5C 71648D6F",
        "4FF3BC96 C7FC6A6D 71D3B363 800A7CDF EF6FC41B 4417EA15 353B7590",
        "4DCEE992 A9762A13 F2F83844 AD3D77EE"
        "0E31C971 8B3DB6C2 035D3961 182C3E0B A247EC41 82D760CD"
        "48D99599 970622A1 881BBA2D C822939C 78C3912C 6661FA54"
        "38B20766 222B75E2 4C2E3AD0 C7287236 129525EE 15B5DD79"
        "98AA04C4 A9696CAC D7172083 A97A8166 4EAD2C47 9E444E4C"
        "0654CC19 E28D7703 CEE8DACD 6126F5D6 65EC52C6 7255DB92"
        "014B037E B621A2AC 8E365DE0 71FFC140 0ACF077A 12913DD8"
        "DE894734 37AB7BA3 46743C1B 215DD9C1 2164A7E4 053118D1"
        "99BEC8EF 6FC56117 0C84C87D 10EE9A67 4A1FA8FF E13BDFBA"
        "1D44DE48 946D68DC 0CDD7776 35A7AB5B FB1E4BB7 B856F968"
        "27734C18 4138E915 D9C3002E BCE53120 546A7E20 02142B6C",
        "34D9BDDC 1B42176C 313FEA03 4C21034D"
        "074A6313 BB4ECDB3 703FFF42 4567A46B DF75530E DE0A9DA5"
        "229DE7D7 6732286C BC0F91DA 4C3C852F C099C679 531D94C7"
        "8AB03D9D ECB0A4E4 CA8B2BB4 591C4021 CF8CE3A2 0A541D33"
        "994017D0 200AE2C9 516E2FF5 14577926 9E862B0F B474A2D5"
        "6DC31ED5 69A7700B 4C4AB16B 22A45513 531EF523 D7121207"
        "7B5A169B DEFFAD7A D9608284 C7795B6D 5A5183B8 7066DE17"
        "D8D671C9 EBD8EC89 544D45EC 061593D4 42C62AB9 CE3B1CB9"
        "943A1D23 A5EA3BCF 21A01471 E67E003E 7F8A69C7 28BE490B"
        "2FC88CFE B92DB6A2 15E5D03C 17C464C9 AC1A46E2 03E13F95"
        "2995FB03 C69D3CC4 7FCB510B 6998FFD3 AA6DE73C F9F63869",
    ),
    DhId.MODP2048_256: (  # A.3
        "0881382C DB87660C 6DC13E61 4938D5B9 C8B2F248 581CC5E3 1B354543 97FCE50E",
        "2E9380C8 323AF975 45BC4941 DEB0EC37"
        "42C62FE0 ECE824A6 ABDBE66C 59BEE024 2911BFB9 67235CEB"
        "A35AE13E 4EC752BE 630B92DC 4BDE2847 A9C62CB8 15274542"
        "1FB7EB60 A63C0FE9 159FCCE7 26CE7CD8 523D7450 667EF840"
        "E4919121 EB5F01C8 C9B0D3D6 48A93BFB 75689E82 44AC134A"
        "F544711C E79A02DC C3422668 4780DDDC B4985941 06C37F5B"
        "C7985648 7AF5AB02 2A2E5E42 F09897C1 A85A11EA 0212AF04"
        "D9B4CEBC 937C3C1A 3E15A8A0 342E3376 15C84E7F E3B8B9B8"
        "7FB1E73A 15AF12A3 0D746E06 DFC34F29 0D797CE5 1AA13AA7"
        "85BF6658 AFF5E4B0 93003CBE AF665B3C 2E113A3A 4E905269"
        "341DC071 1426685F 4EF37E86 8A8126FF 3F2279B5 7CA67E29",
        "7D62A7E3 EF36DE61 7B13D1AF B82C780D 83A23BD4 EE670564 5121F371 F546A53D",
        "575F0351 BD2B1B81 7448BDF8 7A6C362C"
        "1E289D39 03A30B98 32C5741F A250363E 7ACBC7F7 7F3DACBC"
        "1F131ADD 8E03367E FF8FBBB3 E1C57844 24809B25 AFE4D226"
        "2A1A6FD2 FAB64105 CA30A674 E07F7809 85208863 2FC04923"
        "3791AD4E DD083A97 8B883EE6 18BC5E0D D047415F 2D95E683"
        "CF14826B 5FBE10D3 CE41C6C1 20C78AB2 0008C698 BF7F0BCA"
        "B9D7F407 BED0F43A FB2970F5 7F8D1204 3963E66D DD320D59"
        "9AD9936C 8F44137C 08B180EC 5E985CEB E186F3D5 49677E80"
        "607331EE 17AF3380 A725B078 2317D7DD 43F59D7A F9568A9B"
        "B63A84D3 65F92244 ED120988 219302F4 2924C7CA 90B89D24"
        "F71B0AB6 97823D7D EB1AFF5B 0E8E4A45 D49F7F53 757E1913",
        "86C70BF8 D0BB81BB 01078A17 219CB7D2"
        "7203DB2A 19C877F1 D1F19FD7 D77EF225 46A68F00 5AD52DC8"
        "4553B78F C60330BE 51EA7C06 72CAC151 5E4B35C0 47B9A551"
        "B88F39DC 26DA14A0 9EF74774 D47C762D D177F9ED 5BC2F11E"
        "52C879BD 95098504 CD9EECD8 A8F9B3EF BD1F008A C5853097"
        "D9D1837F 2B18F77C D7BE01AF 80A7C7B5 EA3CA54C C02D0C11"
        "6FEE3F95 BB873993 85875D7E 86747E67 6E728938 ACBFF709"
        "8E05BE4D CFB24052 B83AEFFB 14783F02 9ADBDE7F 53FAE920"
        "84224090 E007CEE9 4D4BF2BA CE9FFD4B 57D2AF7C 724D0CAA"
        "19BF0501 F6F17B4A A10F425E 3EA76080 B4B9D6B3 CEFEA115"
        "B2CEB878 9BB8A3B0 EA87FEBE 63B6C8F8 46EC6DB0 C26C5D7C",
    ),
}


@pytest.mark.parametrize("dh_id", list(RFC5114), ids=lambda d: d.name)
def test_rfc5114_vectors(dh_id):
    xa, ya, xb, yb, z = RFC5114[dh_id]
    group = get_dh_group(dh_id)
    a = group.from_private_int(hint(xa))
    b = group.from_private_int(hint(xb))
    assert a.public_bytes == h(ya) and b.public_bytes == h(yb)
    assert len(h(z)) == group.public_size
    assert a.shared_secret(h(yb)) == h(z)
    assert b.shared_secret(h(ya)) == h(z)


# -- every group ---------------------------------------------------------------

@pytest.mark.parametrize("dh_id", SUPPORTED_DH_GROUPS, ids=lambda d: d.name)
def test_generated_keys_agree(dh_id):
    group = get_dh_group(dh_id)
    assert group.id == dh_id and get_dh_group(int(dh_id)) is group
    a, b = group.generate(), group.generate()
    assert a.group is group
    assert len(a.public_bytes) == len(b.public_bytes) == group.public_size
    secret = a.shared_secret(b.public_bytes)
    assert secret == b.shared_secret(a.public_bytes)
    if dh_id in _MODP_PARAMS:
        p = _MODP_PARAMS[dh_id][0]
        assert group.public_size == (p.bit_length() + 7) // 8
        assert len(secret) == group.public_size  # RFC 7296 §2.14: padded to the prime
    else:
        assert len(secret) == group.public_size // 2  # RFC 5903 §7: x only


def test_supported_groups():
    assert SUPPORTED_DH_GROUPS == (2, 5, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24)


# RFC 3526 §8: the upper end of the suggested private exponent size per group
# (twice the upper strength estimate).
RFC3526_MAX_EXPONENT_BITS = {DhId.MODP1536: 240, DhId.MODP2048: 320, DhId.MODP3072: 420,
                             DhId.MODP4096: 480, DhId.MODP6144: 540, DhId.MODP8192: 620}
# and the lower end (twice the lower estimate)
RFC3526_MIN_EXPONENT_BITS = {DhId.MODP1536: 180, DhId.MODP2048: 220, DhId.MODP3072: 260,
                             DhId.MODP4096: 300, DhId.MODP6144: 340, DhId.MODP8192: 380}


@pytest.mark.parametrize("dh_id", list(RFC3526_MAX_EXPONENT_BITS), ids=lambda d: d.name)
def test_rfc3526_groups_use_short_exponents(dh_id):
    """What keeps group 18 usable (milliseconds a key, not seconds) is the
    exponent size RFC 3526 §8 suggests (dh.py): checked on the key itself, not
    with a clock. Every exponent of a group has the same length (its top bit
    set), so the constant-time exponentiation takes the same time for all."""
    group = get_dh_group(dh_id)
    a, b = group.generate(), group.generate()
    lengths = {key._x.bit_length() for key in (a, b, group.generate())}
    assert len(lengths) == 1
    [bits] = lengths
    assert 128 <= RFC3526_MIN_EXPONENT_BITS[dh_id] <= bits <= RFC3526_MAX_EXPONENT_BITS[dh_id]
    assert a.shared_secret(b.public_bytes) == b.shared_secret(a.public_bytes)


def test_group_2_exponent_is_twice_its_strength():
    """RFC 2409's 1024-bit group (80-bit strength): a 160-bit exponent."""
    group = get_dh_group(DhId.MODP1024)
    assert {group.generate()._x.bit_length() for _ in range(5)} == {160}


@pytest.mark.parametrize("dh_id", list(RFC5114_GROUPS), ids=lambda d: d.name)
def test_rfc5114_exponents_are_below_q(dh_id):
    """RFC 5114 §4: the private exponent is drawn from the size of q."""
    q = _MODP_PARAMS[dh_id][2]
    keys = [get_dh_group(dh_id).generate() for _ in range(8)]
    assert all(1 < key._x < q - 1 for key in keys)
    assert max(key._x.bit_length() for key in keys) >= q.bit_length() - 8


def test_modp_values_are_left_padded():
    """A y or g^ir below 2^(8(n-1)) still takes the prime's full length (RFC 7296 §2.14)."""
    group = get_dh_group(DhId.MODP1024_160)
    p, g, q = _MODP_PARAMS[DhId.MODP1024_160]
    rng = random.Random(5114)
    peer = group.from_private_int(hint(RFC5114[DhId.MODP1024_160][2]))
    peer_y = int.from_bytes(peer.public_bytes, "big")
    short_public = short_secret = None
    while short_public is None or short_secret is None:
        x = rng.randrange(2, q)
        if short_public is None and pow(g, x, p) < 2 ** (8 * 127):
            short_public = x
        if short_secret is None and pow(peer_y, x, p) < 2 ** (8 * 127):
            short_secret = x
    key = group.from_private_int(short_public)
    assert len(key.public_bytes) == 128 and key.public_bytes[0] == 0
    assert peer.shared_secret(key.public_bytes) == key.shared_secret(peer.public_bytes)
    key = group.from_private_int(short_secret)
    secret = key.shared_secret(peer.public_bytes)
    assert len(secret) == 128 and secret[0] == 0
    assert secret == peer.shared_secret(key.public_bytes)


# -- RFC 6989 rejections ----------------------------------------------------------

@pytest.mark.parametrize("dh_id", list(_MODP_PARAMS), ids=lambda d: d.name)
def test_modp_rejects_degenerate_values(dh_id):
    group = get_dh_group(dh_id)
    p = _MODP_PARAMS[dh_id][0]
    size = group.public_size
    key = group.generate()
    good = group.generate().public_bytes
    bad_values = [0, 1, p - 1, p, p + 1, 2 ** (8 * size) - 1]  # RFC 6989 §2.1
    bad = [v.to_bytes(size, "big") for v in bad_values]
    bad += [b"", good[1:], b"\x00" + good, good + b"\x00"]  # wrong lengths
    for peer in bad:
        with pytest.raises(InvalidPublicValue):
            key.shared_secret(peer)
        with pytest.raises(InvalidPublicValue):
            group.check_public(peer)
    group.check_public(good)


@pytest.mark.parametrize("dh_id", list(RFC5114_GROUPS), ids=lambda d: d.name)
def test_rfc5114_rejects_values_outside_the_subgroup(dh_id):
    """RFC 6989 §2.2: in range but y^q != 1 mod p."""
    group = get_dh_group(dh_id)
    p, g, q = _MODP_PARAMS[dh_id]
    key = group.generate()
    for y in (2, 3, p - g, p - 2):
        assert pow(y, q, p) != 1
        with pytest.raises(InvalidPublicValue):
            key.shared_secret(y.to_bytes(group.public_size, "big"))


ECP_PRIMES = {
    DhId.ECP256: 2**256 - 2**224 + 2**192 + 2**96 - 1,
    DhId.ECP384: 2**384 - 2**128 - 2**96 + 2**32 - 1,
    DhId.ECP521: 2**521 - 1,
}


@pytest.mark.parametrize("dh_id", list(RFC5903), ids=lambda d: d.name)
def test_ecp_rejects_bad_points(dh_id):
    """RFC 6989 §2.3: on the curve, not the identity; RFC 5903 §7 length."""
    group = get_dh_group(dh_id)
    key = group.generate()
    size = group.public_size // 2
    good = group.generate().public_bytes
    x, y = good[:size], good[size:]
    p_bytes = ECP_PRIMES[dh_id].to_bytes(size, "big")
    off_curve = x + y[:-1] + bytes((y[-1] ^ 1,))
    bad = [
        bytes(2 * size),  # all zero: (0, 0), also how some encode the identity
        off_curve,
        x + x,
        p_bytes + y,  # x not a field element
        x + p_bytes,
        b"\x04" + good,  # SEC 1 prefix is not the IKE encoding
        good[:-1],
        good + b"\x00",
        b"",
        get_dh_group(DhId.MODP2048).generate().public_bytes,
    ]
    for peer in bad:
        with pytest.raises(InvalidPublicValue):
            key.shared_secret(peer)
    group.check_public(good)


@pytest.mark.parametrize(
    "dh_id", [DhId.NONE, DhId.MODP768, DhId.ECP192, DhId.ECP224, DhId.CURVE25519, 99]
)
def test_unsupported_groups(dh_id):
    with pytest.raises(UnsupportedAlgorithm):
        get_dh_group(dh_id)


def test_private_value_out_of_range():
    for dh_id, x in ((DhId.MODP2048, 1), (DhId.MODP1024_160, _MODP_PARAMS[DhId.MODP1024_160][2]),
                     (DhId.ECP256, 0)):
        with pytest.raises(CryptoError):
            get_dh_group(dh_id).from_private_int(x)


@settings(max_examples=40, deadline=None)
@given(dh_id=st.sampled_from([DhId.MODP2048, DhId.ECP256, DhId.ECP521, DhId.MODP2048_256]),
       data=st.data())
def test_arbitrary_peer_bytes_only_raise_invalid_public_value(dh_id, data):
    group = get_dh_group(dh_id)
    key = _KEYS.setdefault(dh_id, group.generate())
    peer = data.draw(st.one_of(
        st.binary(min_size=group.public_size, max_size=group.public_size),
        st.binary(max_size=group.public_size + 2),
    ))
    try:
        secret = key.shared_secret(peer)
    except InvalidPublicValue:
        return
    assert len(secret) in (group.public_size, group.public_size // 2)


_KEYS: dict = {}
