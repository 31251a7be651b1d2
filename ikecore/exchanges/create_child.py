"""CREATE_CHILD_SA requests (RFC 7296 §1.3): which kind, and who answers.

A REKEY_SA notify makes it a CHILD SA rekey; IKE proposals make it an IKE SA
rekey; anything else asks for an additional CHILD SA, which AWS does not give:
"You are limited to one unique security association (SA) pair per tunnel"
(aws-facts.md §1.8), so it is refused with NO_ADDITIONAL_SAS (§1.3).
"""

from __future__ import annotations

from ..constants import NotifyType, ProtocolId
from ..errors import ExchangeError
from ..payloads import SaPayload
from . import child_rekey, ike_rekey


def respond(sa, msg, now, local, remote):
    sa_p = msg.get(SaPayload)
    rekey = msg.notify(NotifyType.REKEY_SA)
    if sa_p and sa_p.proposals and all(p.protocol == ProtocolId.IKE for p in sa_p.proposals):
        return ike_rekey.respond(sa, msg, now, local, remote)
    if rekey is not None:
        return child_rekey.respond(sa, msg, now, local, remote, rekey)
    sa.log(f"AWS tunnel is refusing an additional CHILD_SA from cgw: {remote[0]} "
           "(one SA pair per tunnel)", "warning")
    raise ExchangeError(NotifyType.NO_ADDITIONAL_SAS, "one SA pair per tunnel")
