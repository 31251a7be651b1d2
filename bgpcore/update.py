"""One received UPDATE, decided: which prefixes it withdraws, which it
announces with which attributes, and what RFC 7606 makes of its errors.

The route-level checks live here because they need the whole message: the
well-known mandatory attributes must be present when there is NLRI (RFC 7606
§3 d: else treat-as-withdraw), and the leftmost AS must be the peer's (RFC 4271
§6.3, handled as treat-as-withdraw by RFC 7606 §7.2).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .attributes import Action, Problem, parse_attributes, with_values
from .constants import AttrType, ErrorCode, UpdateError
from .errors import BgpError
from .messages import decode_update


@dataclass
class UpdateOutcome:
    withdrawn: list = field(default_factory=list)       # IPv4Network
    announced: list = field(default_factory=list)       # (IPv4Network, PathAttributes)
    problems: list = field(default_factory=list)        # Problem
    end_of_rib: bool = False

    @property
    def action(self) -> Action:
        return max((p.action for p in self.problems), default=Action.NONE)

    @property
    def reason(self) -> str:
        """The problems in one line (at most five, for a bounded log line)."""
        text = "; ".join(p.reason for p in self.problems[:5])
        more = len(self.problems) - 5
        return text + (f"; and {more} more" if more > 0 else "")


def decide_update(body: bytes, four_octet: bool, peer_asn: int) -> UpdateOutcome:
    """Raises BgpError for what still resets the session (RFC 7606 §3, §5.3)."""
    msg = decode_update(body)
    out = UpdateOutcome(withdrawn=list(msg.withdrawn), end_of_rib=msg.is_end_of_rib)
    parsed = parse_attributes(msg.attributes, four_octet)
    out.problems = list(parsed.problems)
    out.withdrawn += parsed.mp_unreach
    mp_prefixes = parsed.mp_reach[1] if parsed.mp_reach else []
    if msg.nlri or mp_prefixes:
        wanted = [AttrType.ORIGIN, AttrType.AS_PATH] + ([AttrType.NEXT_HOP] if msg.nlri else [])
        for code in wanted:
            if code not in parsed.present:
                out.problems.append(Problem(f"missing well-known attribute {code.name}",
                                            Action.TREAT_AS_WITHDRAW,
                                            UpdateError.MISSING_WELL_KNOWN, bytes([code])))
        path = parsed.values.get("as_path")
        if path is not None and path.first_as != peer_asn:
            out.problems.append(Problem(
                f"AS_PATH '{path}' does not start with the peer's AS {peer_asn}",
                Action.TREAT_AS_WITHDRAW, UpdateError.MALFORMED_AS_PATH))
    elif parsed.present - {AttrType.MP_UNREACH_NLRI}:
        # §5.2: attributes but no NLRI, so nothing proves the message was parsed
        # right: any error stronger than attribute discard resets the session
        worst = [p for p in out.problems if p.action > Action.ATTRIBUTE_DISCARD]
        if worst:
            raise BgpError(ErrorCode.UPDATE_MESSAGE, worst[0].subcode, worst[0].data,
                           f"{worst[0].reason} (an UPDATE without NLRI)")
    if out.action >= Action.TREAT_AS_WITHDRAW:
        out.withdrawn += list(msg.nlri) + list(mp_prefixes)
        return out
    if msg.nlri:
        attrs = with_values(parsed.values, parsed.values.get("next_hop"), parsed.others)
        out.announced += [(p, attrs) for p in msg.nlri]
    if mp_prefixes:
        attrs = with_values(parsed.values, parsed.mp_reach[0], parsed.others)
        out.announced += [(p, attrs) for p in mp_prefixes]
    return out

