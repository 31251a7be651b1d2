"""The states of an IKE SA and of a CHILD SA, and every change allowed between them.

The tables below are the whole state machine: a reader can check each row
against RFC 7296 (the section is on the row), and `transition` is the only code
that changes a state: a change not in the table raises IllegalTransition (a bug
in vgw; the endpoint catches it and tears that one SA down, ikecore.endpoint).

What an exchange does on the wire lives in ikecore/exchanges/; here is only
where it leaves the SA. Flags that are not states stay on the SA: `redundant`
(a new IKE SA that lost a rekey collision, §2.8.1, waits in ESTABLISHED for its
DELETE) and the links between an IKE SA and the one that replaced it
(`successor`, `ike_collision`).
"""

from __future__ import annotations

from enum import Enum


class IkeState(Enum):
    INIT_SENT = "INIT_SENT"            # initiator: our IKE_SA_INIT request is out (§1.2)
    INIT_RECEIVED = "INIT_RECEIVED"    # responder: an IKE_SA_INIT request is in, not answered yet
    AUTH_SENT = "AUTH_SENT"            # initiator: our IKE_AUTH request is out (§1.2)
    HALF_OPEN = "HALF_OPEN"            # responder: IKE_SA_INIT answered, IKE_AUTH awaited (§1.2, §2.6)
    ESTABLISHED = "ESTABLISHED"        # authenticated (§1.2), or created by an IKE SA rekey (§1.3.2)
    REKEYING = "REKEYING"              # our CREATE_CHILD_SA rekeying this IKE SA is out (§2.8)
    REKEYED = "REKEYED"                # a new IKE SA took over its CHILD SAs; a DELETE ends it (§2.18)
    DELETING = "DELETING"              # our DELETE of the IKE SA is out (§1.4.1)
    DEAD = "DEAD"                      # gone (its CHILD SAs with it, §1.4.1)


class ChildState(Enum):
    INSTALLED = "INSTALLED"            # carrying traffic (§1.2 IKE_AUTH, §1.3.3 rekey)
    REKEYING = "REKEYING"              # our CREATE_CHILD_SA rekeying it is out (§1.3.3, §2.8)
    REKEYED = "REKEYED"                # a new CHILD SA replaces it; the rekey's initiator deletes it (§2.8)
    DELETING = "DELETING"              # our DELETE of it is out (§1.4.1)


# Where an IKE SA starts: who creates it decides.
IKE_INITIAL = {
    "initiator": IkeState.INIT_SENT,       # vgw initiates (startup_action start): IKE_SA_INIT goes out at once
    "responder": IkeState.INIT_RECEIVED,   # a customer gateway's IKE_SA_INIT request arrived
    "rekey": IkeState.ESTABLISHED,         # CREATE_CHILD_SA made it from an established one (§1.3.2, §2.18)
}
# A CHILD SA starts INSTALLED (IKE_AUTH §1.2, CREATE_CHILD_SA §1.3) and leaves by
# removal, from any state: the peer's DELETE (§1.4.1), our DELETE answered, its
# hard lifetime, or the end of its IKE SA.
CHILD_INITIAL = ChildState.INSTALLED

_I = IkeState
IKE_TRANSITIONS: dict[tuple[IkeState, IkeState], str] = {
    # §1.2, the initiator
    (_I.INIT_SENT, _I.AUTH_SENT): "the IKE_SA_INIT response gave the keys; IKE_AUTH goes out",
    (_I.INIT_SENT, _I.DEAD): "an error notify or no answer (§1.2, §2.1); on COOKIE and "
                             "INVALID_KE_PAYLOAD the request goes again in INIT_SENT (§1.2, §2.6)",
    (_I.AUTH_SENT, _I.ESTABLISHED): "the responder's AUTH verified (§2.15)",
    (_I.AUTH_SENT, _I.DEAD): "AUTHENTICATION_FAILED either way, or no answer (§2.21.2)",
    # §1.2, the responder
    (_I.INIT_RECEIVED, _I.HALF_OPEN): "IKE_SA_INIT answered with SA, KE and Nr",
    (_I.INIT_RECEIVED, _I.DEAD): "refused: an error notify (NO_PROPOSAL_CHOSEN, INVALID_KE_PAYLOAD, "
                                 "§1.2) or a COOKIE asked instead (§2.6); no state is kept",
    (_I.HALF_OPEN, _I.ESTABLISHED): "the initiator's AUTH verified (§2.15) and answered",
    (_I.HALF_OPEN, _I.DEAD): "AUTHENTICATION_FAILED (§2.21.2), or no IKE_AUTH in time",
    # §2.8, §1.3.2: rekeying the IKE SA; make-before-break (§2.18)
    (_I.ESTABLISHED, _I.REKEYING): "our rekey request goes out",
    (_I.REKEYING, _I.ESTABLISHED): "our rekey was refused or failed (§1.3.2; TEMPORARY_FAILURE, §2.25): "
                                   "a retry is scheduled",
    (_I.ESTABLISHED, _I.REKEYED): "we answered the peer's rekey: the new IKE SA holds the CHILD SAs",
    (_I.REKEYING, _I.REKEYED): "our rekey done, or a collision (§2.8.1, §2.25.2) that the peer's new "
                               "IKE SA won: it holds the CHILD SAs",
    # §1.4.1: deleting
    (_I.ESTABLISHED, _I.DELETING): "our DELETE goes out (operator, hard lifetime, replaced, or "
                                   "the redundant SA of a collision, §2.8.1)",
    (_I.REKEYED, _I.DELETING): "the initiator of the rekey deletes the old IKE SA (§2.8)",
    (_I.DELETING, _I.DEAD): "our DELETE answered, or unanswered (§1.4.1, §2.4)",
    (_I.ESTABLISHED, _I.DEAD): "the peer's DELETE answered (§1.4.1), dead peer (§2.4), INVALID_SYNTAX "
                               "(§2.21.3), replaced after INITIAL_CONTACT (§2.4), or hard lifetime "
                               "with a request outstanding (§2.3)",
    (_I.REKEYING, _I.DEAD): "as ESTABLISHED -> DEAD, with the rekey unanswered",
    (_I.REKEYED, _I.DEAD): "the peer's DELETE of the old IKE SA answered (§2.8), or a failure",
}

_C = ChildState
CHILD_TRANSITIONS: dict[tuple[ChildState, ChildState], str] = {
    # §1.3.3, §2.8: rekeying a CHILD SA
    (_C.INSTALLED, _C.REKEYING): "our rekey request goes out",
    (_C.REKEYING, _C.INSTALLED): "our rekey was refused or failed (TEMPORARY_FAILURE, §2.25: "
                                 "retried later); the SA stays in use",
    (_C.REKEYING, _C.REKEYED): "our rekey done: we delete it; or a collision (§2.8.1) whose "
                               "surviving SA the peer made: the peer deletes it",
    (_C.INSTALLED, _C.REKEYED): "we answered the peer's rekey: the peer deletes it (§2.8)",
    # §1.4.1: deleting (a REKEYING SA is deleted by its rekey's outcome, never directly)
    (_C.INSTALLED, _C.DELETING): "our DELETE goes out (operator, or the redundant SA of a "
                                 "collision, §2.8.1)",
    (_C.REKEYED, _C.DELETING): "the replaced SA: our DELETE goes out (§2.8)",
}

# The IKE states of an authenticated SA that is not being deleted: it answers
# requests and has its timers; a REKEYED one has handed its CHILD SAs on (§2.18).
ESTABLISHED_STATES = frozenset({IkeState.ESTABLISHED, IkeState.REKEYING, IkeState.REKEYED})


class IllegalTransition(Exception):
    """A state change the tables do not allow: a bug in vgw."""


def transition(holder, to: IkeState | ChildState) -> None:
    """Move an IKE SA or a CHILD SA (anything with a `state`) to `to`, or raise
    IllegalTransition when the table has no such row (the state is unchanged)."""
    table = IKE_TRANSITIONS if isinstance(to, IkeState) else CHILD_TRANSITIONS
    if (holder.state, to) not in table:
        raise IllegalTransition(f"{type(holder).__name__}: {holder.state.name} -> {to.name} "
                                "is not in ikecore.state's table")
    holder.state = to
