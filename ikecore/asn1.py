"""The little DER (ITU-T X.690) that IKE needs beside `cryptography`: the
AlgorithmIdentifier of RFC 7427 signatures (written and read) and a readable
form of the DN in an ID_DER_ASN1_DN payload, which `cryptography` cannot load on
its own. Strict definite-length DER only; anything else raises ValueError.
"""

from __future__ import annotations

SEQUENCE = 0x30
SET = 0x31
OID = 0x06
NULL = 0x05
INTEGER = 0x02


def tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        length = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + content


def read(data: bytes, pos: int = 0) -> tuple[int, int, int]:
    """One TLV at `pos`: (tag, start of content, end of content)."""
    if pos + 2 > len(data):
        raise ValueError("DER: truncated")
    tag, first = data[pos], data[pos + 1]
    if tag & 0x1F == 0x1F:
        raise ValueError("DER: multi-byte tags are not used here")
    pos += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 3 or pos + count > len(data):
            raise ValueError("DER: bad length")
        length = int.from_bytes(data[pos:pos + count], "big")
        if length < 0x80 or data[pos] == 0:
            raise ValueError("DER: length not in shortest form")
        pos += count
    end = pos + length
    if end > len(data):
        raise ValueError("DER: content runs past the end")
    return tag, pos, end


def children(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    out = []
    pos = start
    while pos < end:
        tag, s, e = read(data[:end], pos)
        out.append((tag, s, e))
        pos = e
    return out


def encode_oid(dotted: str) -> bytes:
    """An OBJECT IDENTIFIER TLV from "1.2.840.113549.1.1.11"."""
    arcs = [int(a) for a in dotted.split(".")]
    if len(arcs) < 2 or arcs[0] > 2 or (arcs[0] < 2 and arcs[1] > 39):
        raise ValueError(f"bad OID {dotted}")
    body = bytearray()
    for arc in [40 * arcs[0] + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body += bytes(reversed(chunk))
    return tlv(OID, bytes(body))


def decode_oid(content: bytes) -> str:
    if not content or content[-1] & 0x80:
        raise ValueError("DER: bad OID")
    arcs, value = [], 0
    for b in content:
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(map(str, [first, arcs[0] - 40 * first, *arcs[1:]]))


# Short names as strongSwan and OpenSSL print them.
_ATTR_NAMES = {
    "2.5.4.3": "CN", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.9": "STREET",
    "2.5.4.10": "O", "2.5.4.11": "OU", "2.5.4.5": "serialNumber", "2.5.4.4": "SN",
    "2.5.4.42": "GN", "2.5.4.12": "T", "0.9.2342.19200300.100.1.25": "DC",
    "0.9.2342.19200300.100.1.1": "UID", "1.2.840.113549.1.9.1": "E",
}
_STRINGS = {0x0C: "utf-8", 0x13: "ascii", 0x16: "ascii", 0x14: "latin-1",
            0x1E: "utf-16-be", 0x1C: "utf-32-be"}


def name_rdns(der: bytes) -> list[list[tuple[str, str]]]:
    """A DER Name (SEQUENCE OF SET OF AttributeTypeAndValue) as RDNs of
    (OID, value) pairs; string values decoded whatever their ASN.1 string type,
    others as "#" + hex."""
    tag, start, end = read(der)
    if tag != SEQUENCE or end != len(der):
        raise ValueError("DER: a Name is one SEQUENCE")
    rdns = []
    for set_tag, s, e in children(der, start, end):
        if set_tag != SET:
            raise ValueError("DER: an RDN is a SET")
        parts = []
        for atv_tag, a, b in children(der, s, e):
            fields = children(der, a, b)
            if atv_tag != SEQUENCE or len(fields) != 2 or fields[0][0] != OID:
                raise ValueError("DER: bad AttributeTypeAndValue")
            oid = decode_oid(der[fields[0][1]:fields[0][2]])
            vtag, vs, ve = fields[1]
            codec = _STRINGS.get(vtag)
            parts.append((oid, der[vs:ve].decode(codec, "replace") if codec else "#" + der[vs:ve].hex()))
        rdns.append(parts)
    return rdns


def name_text(der: bytes) -> str:
    """A DER Name as `C=US, O=x, CN=y` (first RDN first, as strongSwan prints it)."""
    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace(",", "\\,").replace("+", "\\+")
    return ", ".join("+".join(f"{_ATTR_NAMES.get(oid, oid)}={esc(v)}" for oid, v in rdn)
                     for rdn in name_rdns(der))


def names_match(a: bytes, b: bytes) -> bool:
    """Two DER Names name the same entity (RFC 5280 §7.1, simplified RFC 4518
    preparation): equal DER, or the same RDNs in the same order whose values are
    equal ignoring the ASN.1 string type, case and runs of spaces. strongSwan
    writes an ID_DER_ASN1_DN from text with PrintableString where `cryptography`
    certificates carry UTF8String, so byte equality alone would refuse it."""
    if a == b:
        return True
    try:
        ra, rb = name_rdns(a), name_rdns(b)
    except ValueError:
        return False
    def prep(rdn):
        return sorted((oid, " ".join(v.split()).casefold()) for oid, v in rdn)
    return len(ra) == len(rb) and all(prep(x) == prep(y) for x, y in zip(ra, rb))
