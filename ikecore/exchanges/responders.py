"""Which module answers which request (the responder's dispatch table)."""

from ..constants import ExchangeType
from . import create_child, ike_auth, ike_init, informational

HANDLERS = {
    ExchangeType.IKE_SA_INIT: ike_init.respond,
    ExchangeType.IKE_AUTH: ike_auth.respond,
    ExchangeType.INFORMATIONAL: informational.respond,
    ExchangeType.CREATE_CHILD_SA: create_child.respond,
}
