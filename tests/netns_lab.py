"""Three network namespaces wired like a phone, a gateway and a recorder on a SPAN port.

    phone (198.18.10.1) --veth-- gateway (198.18.10.2)
                                   | tc u32 match-all, action mirred egress mirror
                                   v  (both directions of the gateway's phone-side interface)
                                 agent: interface "span0", no address

Every address is in 198.18.0.0/15 and lives inside a namespace; nothing touches the root
namespace, and ``lab()`` deletes the namespaces (after killing what it started in them) in a
``finally``. Reachability is checked with ``ip -n NS route get``, never by connecting out.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field

PHONE_IP = "198.18.10.1"
GATEWAY_IP = "198.18.10.2"
SPAN_IF = "span0"


def ip(*args: str) -> str:
    return subprocess.run(["ip", *args], check=True, capture_output=True, text=True).stdout


def tc(namespace: str, *args: str) -> None:
    subprocess.run(["ip", "netns", "exec", namespace, "tc", *args], check=True, capture_output=True)


@dataclass
class Lab:
    phone: str
    gateway: str
    agent: str
    processes: list[subprocess.Popen[str]] = field(default_factory=list)

    def spawn(self, namespace: str, *argv: str, cwd: str | None = None) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            ["ip", "netns", "exec", namespace, *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
        )
        self.processes.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.communicate(timeout=20)  # also closes the pipes
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()


def _wire(lab: Lab) -> None:
    ip(
        "-n",
        lab.phone,
        "link",
        "add",
        "ph0",
        "type",
        "veth",
        "peer",
        "name",
        "gw0",
        "netns",
        lab.gateway,
    )
    ip(
        "-n",
        lab.gateway,
        "link",
        "add",
        "mir0",
        "type",
        "veth",
        "peer",
        "name",
        SPAN_IF,
        "netns",
        lab.agent,
    )
    ip("-n", lab.phone, "addr", "add", f"{PHONE_IP}/24", "dev", "ph0")
    ip("-n", lab.gateway, "addr", "add", f"{GATEWAY_IP}/24", "dev", "gw0")
    for namespace, devices in (
        (lab.phone, ["lo", "ph0"]),
        (lab.gateway, ["lo", "gw0", "mir0"]),
        (lab.agent, ["lo", SPAN_IF]),
    ):
        for device in devices:
            ip("-n", namespace, "link", "set", device, "up")
    tc(lab.gateway, "qdisc", "add", "dev", "gw0", "clsact")
    for direction in ("ingress", "egress"):
        tc(lab.gateway, "filter", "add", "dev", "gw0", direction, "u32", "match", "u32", "0", "0",
           "action", "mirred", "egress", "mirror", "dev", "mir0")  # fmt: skip
    route = ip("-n", lab.phone, "route", "get", GATEWAY_IP)
    if "dev ph0" not in route:
        raise RuntimeError(f"the phone cannot reach the gateway through ph0: {route}")


@contextlib.contextmanager
def lab() -> Iterator[Lab]:
    """The three namespaces, wired; deleted (with what ran in them) on exit."""
    tag = secrets.token_hex(3)
    made = Lab(f"cc-phone-{tag}", f"cc-gw-{tag}", f"cc-agent-{tag}")
    names = [made.phone, made.gateway, made.agent]
    created: list[str] = []
    try:
        for name in names:
            ip("netns", "add", name)
            created.append(name)
        _wire(made)
        yield made
    finally:
        made.stop_all()
        for name in created:
            subprocess.run(["ip", "netns", "delete", name], check=False, capture_output=True)


def python() -> str:
    """The interpreter of this virtualenv (the namespaces share the file system)."""
    return os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", ".venv", "bin", "python")
