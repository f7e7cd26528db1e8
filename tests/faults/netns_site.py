"""A fault-test site split over two network namespaces: the customer's site and the data centre.

    site namespace (198.18.30.1, veth "s0"): the agent and the PBX simulator (on its loopback)
    dc namespace   (198.18.30.2, veth "d0"): sshd, the landing area

Contract:

- ``netns_site(tmp_path, options)`` makes both namespaces (random names, ``cc-site-*`` and
  ``cc-dc-*``), wires them, starts sshd in the dc namespace and opens a ``Site`` whose PBX
  simulator listens inside the site namespace and whose agent runs there
  (``ip netns exec``). Ingest and the store stay in the test process: they only touch files.
  On exit it stops the agent, sshd and the simulator, then deletes both namespaces, whatever
  happened.
- ``set_blackhole(lab, on=)`` puts (or removes) a ``blackhole`` qdisc on both ends of the
  link: every packet is dropped silently, in both directions.
- The rules of the house (environment.md): addresses from 198.18.0.0/15 inside namespaces only,
  every sender inside one, reachability checked with ``ip -n NS route get``, never by
  connecting; processes started with ``ip netns exec`` are stopped before the namespace goes.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from tests.faults.site import BIN, ManagedProcess, Site, SiteOptions
from tests.fixtures.sshd import SSHD, SshdServer, make_sshd

SITE_IP = "198.18.30.1"
DC_IP = "198.18.30.2"
SSH_PORT = 2222  # the dc namespace is ours alone: no other server can hold it
CLONE_NEWNET = 0x40000000
START_SECONDS = 10.0

T = TypeVar("T")


def ip(*args: str) -> str:
    return subprocess.run(["ip", *args], check=True, capture_output=True, text=True).stdout


@dataclass
class NetnsSite:
    site: Site
    sshd: SshdServer
    site_ns: str
    dc_ns: str


def in_namespace(name: str, work: Callable[[], T]) -> T:
    """Run ``work`` in a thread that joined namespace ``name``: its sockets are made there."""
    result: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns into {name} failed")
            result.append(work())
        except BaseException as exc:
            failure.append(exc)
        finally:
            os.close(fd)

    thread = threading.Thread(target=run, name=f"in-{name}")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]


def _wire(site_ns: str, dc_ns: str) -> None:
    ip("-n", site_ns, "link", "add", "s0", "type", "veth", "peer", "name", "d0", "netns", dc_ns)
    ip("-n", site_ns, "addr", "add", f"{SITE_IP}/24", "dev", "s0")
    ip("-n", dc_ns, "addr", "add", f"{DC_IP}/24", "dev", "d0")
    for namespace, device in ((site_ns, "lo"), (site_ns, "s0"), (dc_ns, "lo"), (dc_ns, "d0")):
        ip("-n", namespace, "link", "set", device, "up")
    route = ip("-n", site_ns, "route", "get", DC_IP)
    if "dev s0" not in route:
        raise RuntimeError(f"the site namespace does not reach {DC_IP} through s0: {route}")


def _start_sshd(sshd: SshdServer, dc_ns: str) -> None:
    sshd.port = SSH_PORT
    sshd.write_config()
    config = sshd.config_path.read_text().replace("ListenAddress 127.0.0.1",
                                                  f"ListenAddress {DC_IP}")  # fmt: skip
    sshd.config_path.write_text(config)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    with (sshd.root / "sshd.log").open("ab") as log:
        sshd.process = subprocess.Popen(["ip", "netns", "exec", dc_ns, SSHD, "-D", "-e", "-f",
                                         str(sshd.config_path)],
                                        stdout=log, stderr=log)  # fmt: skip
    listening = f"{DC_IP}:{SSH_PORT}"
    deadline = START_SECONDS
    while listening not in subprocess.run(["ip", "netns", "exec", dc_ns, "ss", "-Hltn"],
                                           capture_output=True, text=True).stdout:  # fmt: skip
        if sshd.process.poll() is not None:
            raise RuntimeError(f"sshd exited {sshd.process.returncode} in {dc_ns}")
        deadline -= 0.05
        if deadline <= 0:
            raise TimeoutError(f"sshd did not listen on {listening} in {dc_ns}")
        threading.Event().wait(0.05)


def _point_agent_at_dc(site: Site, sshd: SshdServer) -> None:
    """The agent's uplink goes to sshd's namespace address, with its host key pinned there."""
    text = site.agent_config.read_text()
    uplink = f'host = "127.0.0.1"\nport = {sshd.port}'
    assert uplink in text, "the site's uplink settings are not where expected"
    site.agent_config.write_text(text.replace(uplink, f'host = "{DC_IP}"\nport = {SSH_PORT}'))
    pub = sshd.host_key.with_suffix(".pub").read_text().split()
    (sshd.root / "known_hosts").write_text(f"[{DC_IP}]:{SSH_PORT} {pub[0]} {pub[1]}\n")


def set_blackhole(lab: NetnsSite, *, on: bool) -> None:
    for namespace, device in ((lab.site_ns, "s0"), (lab.dc_ns, "d0")):
        action = ["add", "dev", device, "root", "blackhole"] if on else ["del", "dev", device,
                                                                         "root"]  # fmt: skip
        subprocess.run(["ip", "netns", "exec", namespace, "tc", "qdisc", *action], check=True,
                       capture_output=True)  # fmt: skip


@contextlib.contextmanager
def netns_site(tmp_path: Path, options: SiteOptions) -> Iterator[NetnsSite]:
    tag = secrets.token_hex(3)
    site_ns, dc_ns = f"cc-site-{tag}", f"cc-dc-{tag}"
    created: list[str] = []
    sshd = make_sshd(tmp_path / "sshd")
    site: Site | None = None
    try:
        for name in (site_ns, dc_ns):
            ip("netns", "add", name)
            created.append(name)
        _wire(site_ns, dc_ns)
        _start_sshd(sshd, dc_ns)
        site = Site(tmp_path / "site", sshd, options)
        in_namespace(site_ns, site.open)  # the simulator listens on the site's loopback
        _point_agent_at_dc(site, sshd)
        site.agent = ManagedProcess(["ip", "netns", "exec", site_ns, str(BIN / "edge-agent"),
                                     "run", "-c", str(site.agent_config)], site.agent_log)  # fmt: skip
        yield NetnsSite(site, sshd, site_ns, dc_ns)
    finally:
        try:
            if site is not None:
                site.close()
        finally:
            sshd.stop()
            for name in created:
                subprocess.run(["ip", "netns", "delete", name], check=False, capture_output=True)
