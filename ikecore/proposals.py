"""Building SA offers and choosing among a peer's offers, as AWS does.

AWS: "Site-to-Site VPN tunnel endpoints evaluate proposals from your customer
gateway starting with the lowest configured value ... regardless of the proposal
order from the customer gateway" (docs/aws.md §1.1). So the responder first
chooses the suite: it walks its own lists in order (encryption with its key
length, then integrity, then PRF; for ESP encryption and integrity, ESN being
NO_ESN only) and takes the first combination that one peer proposal holds whole.
The peer's KE guess never changes that choice.

Then the DH group, among those the peer offers with that suite (RFC 7296 §1.2,
§1.3): the peer's KE group if it is in vgw's list (AWS does not document this;
strongSwan does the same, avoiding a needless INVALID_KE round trip); otherwise
INVALID_KE_PAYLOAD naming vgw's most preferred group that the peer offers with
that suite. Only when the peer offers no group of vgw's with that suite does
the walk go on to vgw's next suite; NO_PROPOSAL_CHOSEN when none is left.
"""

from __future__ import annotations

from dataclasses import dataclass

from .constants import EsnId, IntegId, ProtocolId, TransformType
from .payloads import Proposal, Transform
from .transforms import ENCRYPTION, INTEGRITY, Encr, dh_name, encr_name, integ_name, prf_name

KNOWN_TYPES = {t.value for t in TransformType}


class NoProposalChosen(Exception):
    """Nothing the peer offered is acceptable (NO_PROPOSAL_CHOSEN)."""


class InvalidKe(Exception):
    """The proposal fits but the KE group does not: answer INVALID_KE_PAYLOAD."""

    def __init__(self, group: int):
        super().__init__(f"want DH group {group}")
        self.group = group


@dataclass(frozen=True)
class Suite:
    """A negotiated algorithm set. `integ` is NONE with AES-GCM; `prf` is None for
    ESP; `dh` is 0 when no key exchange is part of it."""

    encr: Encr
    integ: int
    prf: int | None
    dh: int
    esn: bool = False


@dataclass
class _Offer:
    """One peer proposal, decomposed into what it offers per transform type."""

    proposal: Proposal
    encr: set
    integ: set
    prf: set
    dh: set
    esn: set
    usable: bool

    @classmethod
    def of(cls, p: Proposal) -> "_Offer":
        sets = {t: set() for t in TransformType}
        usable = True
        for t in p.transforms:
            if t.type not in KNOWN_TYPES:
                usable = False  # e.g. RFC 9370 additional key exchanges: not supported
                continue
            if t.unknown_attrs:
                continue  # §3.3.6: reject the transform, not the proposal
            value = (t.id, t.key_length) if t.type == TransformType.ENCR else t.id
            sets[TransformType(t.type)].add(value)
        return cls(p, sets[TransformType.ENCR], sets[TransformType.INTEG],
                   sets[TransformType.PRF], sets[TransformType.DH], sets[TransformType.ESN],
                   usable)

    def holds(self, encr: Encr, integ: int, prf: int | None) -> bool:
        """Does this proposal offer the whole suite (the PRF only for IKE)?"""
        return ((encr.id, encr.key_bits) in self.encr and self.has_integ(encr, integ)
                and (prf is None or prf in self.prf))

    def has_integ(self, encr: Encr, integ: int) -> bool:
        if encr.is_aead:
            # RFC 7296 §3.3: AEAD proposals carry no INTEG (or only NONE)
            return not self.integ or self.integ == {IntegId.NONE}
        return integ in self.integ


def _encr_transform(e: Encr) -> Transform:
    return Transform(TransformType.ENCR, e.id, e.key_bits)


def _split_aead(names: tuple[str, ...]) -> list[list[Encr]]:
    """AEAD and non-AEAD ciphers must sit in separate proposals (RFC 7296 §3.3);
    the group holding the user's first choice comes first."""
    encrs = [ENCRYPTION[n] for n in names]
    plain = [e for e in encrs if not e.is_aead]
    aead = [e for e in encrs if e.is_aead]
    groups = [plain, aead] if encrs and not encrs[0].is_aead else [aead, plain]
    return [g for g in groups if g]


def ike_offer(encryption, integrity, dh_groups, first_group: int | None = None) -> list[Proposal]:
    """The IKE SA proposals vgw sends as initiator (IKE_SA_INIT or IKE rekey).
    `first_group` moves the group of the KE payload to the front."""
    groups = list(dh_groups)
    if first_group is not None and first_group in groups:
        groups.remove(first_group)
        groups.insert(0, first_group)
    proposals = []
    for num, encrs in enumerate(_split_aead(tuple(encryption)), start=1):
        ts = [_encr_transform(e) for e in encrs]
        ts += [Transform(TransformType.PRF, INTEGRITY[n].prf) for n in integrity]
        if not encrs[0].is_aead:
            ts += [Transform(TransformType.INTEG, INTEGRITY[n].integ) for n in integrity]
        ts += [Transform(TransformType.DH, g) for g in groups]
        proposals.append(Proposal(num, ProtocolId.IKE, b"", tuple(ts)))
    return proposals


def esp_offer(encryption, integrity, spi: bytes, dh_groups=()) -> list[Proposal]:
    """The ESP proposals vgw sends as initiator. No DH in IKE_AUTH (the first CHILD
    SA takes its keys from the IKE SA, RFC 7296 §1.2); the PFS groups on rekeys."""
    proposals = []
    for num, encrs in enumerate(_split_aead(tuple(encryption)), start=1):
        ts = [_encr_transform(e) for e in encrs]
        if not encrs[0].is_aead:
            ts += [Transform(TransformType.INTEG, INTEGRITY[n].integ) for n in integrity]
        ts += [Transform(TransformType.DH, g) for g in dh_groups]
        ts.append(Transform(TransformType.ESN, EsnId.NO_ESN))
        proposals.append(Proposal(num, ProtocolId.ESP, spi, tuple(ts)))
    return proposals


def _spi_usable(spi: bytes) -> bool:
    """RFC 4303 §2.1: SPI 0 is never sent and 1..255 are reserved; the data path
    cannot install an SA with one of them."""
    return int.from_bytes(spi, "big") > 255


def _suites(encryption, integrity, with_prf):
    """vgw's suites in its own preference order (docs/aws.md §1.1): encryption
    outranks integrity, integrity outranks PRF. Yields (encr, integ, prf)."""
    prfs = [INTEGRITY[n].prf for n in integrity] if with_prf else [None]
    for e in (ENCRYPTION[n] for n in encryption):
        integs = [IntegId.NONE] if e.is_aead else [INTEGRITY[n].integ for n in integrity]
        for integ in integs:
            for prf in prfs:
                yield e, integ, prf


def _select(offers: list[_Offer], encryption, integrity, with_prf: bool, dh_groups,
            ke_group: int | None, need_group: bool) -> tuple[_Offer, Suite]:
    """The suite first, strictly in vgw's order among what the peer offers; then,
    with `need_group`, a DH group offered with that suite (module docstring).

    The peer's KE group decides only the group, never the suite: a guess that
    fits a proposal with a less preferred cipher does not win over vgw's
    preferred one, it gets INVALID_KE_PAYLOAD (RFC 7296 §1.2)."""
    for e, integ, prf in _suites(encryption, integrity, with_prf):
        holders = [o for o in offers if o.holds(e, integ, prf)]   # in the peer's order
        if not holders:
            continue
        if not need_group:
            return holders[0], Suite(e, integ, prf, 0)
        # The peer's guess is taken when vgw allows it and the peer offers it with
        # this suite: strongSwan does the same and it saves a round trip. AWS does
        # not document it either way.
        if ke_group is not None and ke_group in dh_groups:
            for offer in holders:
                if ke_group in offer.dh:
                    return offer, Suite(e, integ, prf, ke_group)
        for group in dh_groups:
            if any(group in offer.dh for offer in holders):
                raise InvalidKe(group)   # vgw's most preferred group for this suite
        # no group of vgw's offered with this suite: vgw's next suite
    raise NoProposalChosen("no proposal in common")


def select_ike(proposals: list[Proposal], encryption, integrity, dh_groups,
               ke_group: int | None) -> tuple[Proposal, Suite]:
    """Responder: choose an IKE suite. Returns the proposal to send back."""
    offers = [o for o in map(_Offer.of, proposals) if o.usable and o.proposal.protocol == ProtocolId.IKE]
    offer, suite = _select(offers, encryption, integrity, True, dh_groups, ke_group, True)
    return _answer(offer.proposal, suite, b""), suite


def select_esp(proposals: list[Proposal], encryption, integrity, spi: bytes,
               dh_groups=(), ke_group: int | None = None,
               pfs: bool = False) -> tuple[Proposal, Suite]:
    """Responder: choose an ESP suite. With `pfs` (CREATE_CHILD_SA), a KE group
    from `dh_groups` is required; without it, DH transforms are ignored (IKE_AUTH)."""
    offers = [o for o in map(_Offer.of, proposals)
              if o.usable and o.proposal.protocol == ProtocolId.ESP
              and _spi_usable(o.proposal.spi)
              and (not o.esn or EsnId.NO_ESN in o.esn)]  # vgw does not do ESN
    offer, suite = _select(offers, encryption, integrity, False, dh_groups, ke_group, pfs)
    return _answer(offer.proposal, suite, spi, esn=bool(offer.esn)), suite


def _answer(p: Proposal, suite: Suite, spi: bytes, esn: bool = False) -> Proposal:
    """The single proposal of a response, numbered as the peer numbered it (§3.3.1)."""
    ts = [_encr_transform(suite.encr)]
    if suite.prf is not None:
        ts.append(Transform(TransformType.PRF, suite.prf))
    if suite.integ != IntegId.NONE:
        ts.append(Transform(TransformType.INTEG, suite.integ))
    if suite.dh:
        ts.append(Transform(TransformType.DH, suite.dh))
    if esn:
        ts.append(Transform(TransformType.ESN, EsnId.NO_ESN))
    return Proposal(p.num, p.protocol, spi, tuple(ts))


def check_answer(offered: list[Proposal], answer: list[Proposal], protocol: int) -> Suite:
    """Initiator: the responder must pick exactly one of our proposals and, in it,
    one of the transforms we offered of each type (RFC 7296 §2.7)."""
    if len(answer) != 1:
        raise NoProposalChosen(f"response carries {len(answer)} proposals")
    chosen = answer[0]
    mine = next((p for p in offered if p.num == chosen.num), None)
    if mine is None or chosen.protocol != protocol:
        raise NoProposalChosen("response names a proposal we did not offer")
    if protocol == ProtocolId.ESP and not _spi_usable(chosen.spi):
        raise NoProposalChosen(f"response carries the reserved ESP SPI {chosen.spi.hex()}")
    picked: dict[int, Transform] = {}
    for t in chosen.transforms:
        if t.type in picked:
            raise NoProposalChosen("response carries two transforms of one type")
        if t not in mine.transforms:
            raise NoProposalChosen(f"response picked transform {t.type}/{t.id} we did not offer")
        picked[t.type] = t
    encr_t = picked.get(TransformType.ENCR)
    if encr_t is None:
        raise NoProposalChosen("response has no encryption transform")
    encr = next(e for e in ENCRYPTION.values()
                if e.id == encr_t.id and e.key_bits == encr_t.key_length)
    integ_t = picked.get(TransformType.INTEG)
    integ = integ_t.id if integ_t else IntegId.NONE
    if not encr.is_aead and integ == IntegId.NONE:
        raise NoProposalChosen("response has no integrity transform")
    prf_t = picked.get(TransformType.PRF)
    if protocol == ProtocolId.IKE and prf_t is None:
        raise NoProposalChosen("response has no PRF")
    dh_t = picked.get(TransformType.DH)
    if protocol == ProtocolId.IKE and dh_t is None:
        raise NoProposalChosen("response has no DH group")
    esn_t = picked.get(TransformType.ESN)
    return Suite(encr, integ, prf_t.id if prf_t else None, dh_t.id if dh_t else 0,
                 bool(esn_t and esn_t.id == EsnId.ESN))


# --- for the logs ---------------------------------------------------------------------------


def describe_suite(suite: Suite) -> str:
    """A negotiated suite as the logs name it: "AES128, SHA2-256, PRF ..., DH ..."."""
    parts = [encr_name(suite.encr.id, suite.encr.key_bits)]
    if integ_name(suite.integ):
        parts.append(integ_name(suite.integ))
    if suite.prf is not None:
        parts.append(f"PRF {prf_name(suite.prf)}")
    if suite.dh:
        parts.append(f"DH {dh_name(suite.dh)}")
    return ", ".join(parts)


def describe_offer(proposals) -> str:
    """A peer's proposals, transform by transform (type:id-keylength), for a debug log."""
    out = []
    for p in proposals:
        out.append("/".join(f"{t.type}:{t.id}" + (f"-{t.key_length}" if t.key_length else "")
                            for t in p.transforms))
    return "; ".join(out)
