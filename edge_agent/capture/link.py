"""The mirror interface's link, through pyroute2: is it up, and is it promiscuous?

A SPAN port delivers frames addressed to other machines; without promiscuous mode the NIC drops
them before the packet socket sees them. ``prepare_link`` checks the link exists and is up and
turns promiscuous mode on; ``link_state`` is polled for health.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyroute2 import IPRoute

from shared.errors import SourceError

IFF_UP = 0x1
IFF_PROMISC = 0x100
IFF_LOWER_UP = 0x10000


@dataclass(frozen=True)
class LinkState:
    exists: bool
    up: bool = False
    carrier: bool = False
    promiscuous: bool = False


def link_state(interface: str) -> LinkState:
    with IPRoute() as ipr:
        found = ipr.link_lookup(ifname=interface)
        if not found:
            return LinkState(exists=False)
        (link,) = ipr.get_links(found[0])
    flags = int(link["flags"])
    return LinkState(
        True, bool(flags & IFF_UP), bool(flags & IFF_LOWER_UP), bool(flags & IFF_PROMISC)
    )


def prepare_link(interface: str, *, promiscuous: bool = True) -> LinkState:
    """Check ``interface`` is up; set promiscuous mode. Raises SourceError with the fix."""
    state = link_state(interface)
    if not state.exists:
        raise SourceError(
            f"capture interface '{interface}' does not exist: set capture.interface to the NIC "
            "wired to the switch mirror port (see `ip link`)"
        )
    if not state.up:
        raise SourceError(
            f"capture interface '{interface}' is down: bring it up (`ip link set {interface} up`) "
            "and check the cable to the mirror port"
        )
    if promiscuous and not state.promiscuous:
        with IPRoute() as ipr:
            index = ipr.link_lookup(ifname=interface)[0]
            ipr.link("set", index=index, flags=IFF_PROMISC, change=IFF_PROMISC)
        state = link_state(interface)
    return state
