"""Terraform's call sequence for aws_customer_gateway, aws_vpn_gateway,
aws_vpn_connection and aws_vpn_connection_route (tests/unit/daemon/api/terraform.py),
on a clock the test moves: each waiter passes on its first poll, as Terraform's do."""

from __future__ import annotations

from .terraform import replay


class MovedClock:
    """Terraform's StateChangeConf on the test's clock: no sleeping."""

    def __init__(self, endpoint):
        self.clock = endpoint.clock

    def wait(self, refresh, pending, target, delay=10.0, poll=10.0, timeout=600.0):
        self.clock.advance(delay)
        waited = delay
        while waited <= timeout:
            state = refresh()
            if state in target or (state is None and not target):
                return state
            assert state in pending, f"unexpected state {state} (waiting for {target or 'gone'})"
            self.clock.advance(poll)
            waited += poll
        raise AssertionError("timed out")

    def pause(self, seconds: float) -> None:
        self.clock.advance(seconds)


def test_terraform_replay(ec2, endpoint):
    _, ips = replay(ec2, MovedClock(endpoint))
    # the gateway was told: created, route added, tunnel1 replaced, route removed, deleted
    kinds = [(c.kind, tuple(map(str, c.replace))) for c in endpoint.view.changes]
    assert kinds == [("created", ()), ("modified", ()), ("modified", (ips[0],)), ("modified", ()), ("deleted", ())]
