"""CREATE_CHILD_SA (RFC 7296 §1.3): refused until rekeying is implemented.

NO_ADDITIONAL_SAS keeps the IKE SA and tells the peer this SA takes no more
CHILD SAs (§1.3); AWS allows one SA pair per tunnel (aws-facts.md §1.8).
"""

from __future__ import annotations

from ..constants import NotifyType
from ..errors import ExchangeError


def respond(sa, msg, now, local, remote):
    sa.log(f"AWS tunnel is refusing CREATE_CHILD_SA from cgw: {remote[0]}", "warning")
    raise ExchangeError(NotifyType.NO_ADDITIONAL_SAS, "CREATE_CHILD_SA not supported")
