"""IKEv2 (RFC 7296) for the AWS side of a Site-to-Site VPN tunnel, sans-I/O: bytes
and the time go in, bytes to send, events and the next deadline come out. No
sockets, clock, threads or asyncio here (docs/design.md).

The modules import one way, top to bottom (tests/unit/test_imports.py):

    endpoint            one AWS tunnel's IKE side: finds the SA of each datagram,
                        registers what answers requests and fires timers
    exchanges/*         one module per IKE exchange, both roles (ike_init, ike_auth,
                        create_child_sa, ike_rekey, informational)
    sa_operations       what several exchanges do to an SA (bring it up, install a
                        CHILD SA, the responder's DH step and CHILD SA, hand-over)
    sa                  one IKE SA: message IDs, retransmission, the response cache
    child, nat          CHILD SA records; NAT detection and keepalives
    state, timers       the SA state tables; the typed timers
    wire, crypto, rules messages, payloads, fragment, crypto/, proposals, ts,
                        auth, certs, sigauth, dos, settings, events, errors
"""
