"""The client's address as the relay names it: trusted networks, failure counts, `staff unlock
--client` and the archive must agree on one form."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from gateway.smtp.handler import _peer_ip


@pytest.mark.parametrize(
    ("peer", "named"),
    [
        (("::ffff:10.1.2.3", 2525, 0, 0), "10.1.2.3"),  # IPv4 on a dual-stack listener
        (("10.1.2.3", 2525), "10.1.2.3"),
        (("::1", 2525, 0, 0), "::1"),
        (("fe80::1%eth0", 2525, 0, 2), "fe80::1%eth0"),
        ("not an address", "not an address"),
    ],
)
def test_an_ipv4_client_of_a_dual_stack_listener_is_named_as_ipv4(peer, named):
    """A review: on `listen = "[::]:587"` the relay recorded IPv4 clients as ::ffff:a.b.c.d,
    so `staff unlock --client a.b.c.d` cleared nothing, and 10.0.0.0/8 did not trust them."""
    assert _peer_ip(SimpleNamespace(peer=peer)) == named
