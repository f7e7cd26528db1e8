"""Run a whole callcollect site on this machine: a simulated PBX feeding a local data centre.

Started by `bash scripts/demo.sh` (which installs everything first). Everything listens on
loopback only:

    PBX simulator (MiVB SMDR, TCP)  ->  edge-agent run  ->  OpenSSH sshd (SFTP landing area)
        ->  datacenter ingest --watch  ->  SQLite store  ->  datacenter serve (gunicorn)

The demo site runs three sources side by side: a MiVoice Business SMDR simulator, an MCS IP SMDR
simulator, and a Lync / Skype for Business LcsCDR stand-in (a PostgreSQL database with the real
dbo schema, read through psqlODBC). The data centre also runs its alarm loop.

The demo company has a directory (people, departments, cost centres and sites for every
extension the simulated PBXs use), so calls show who made them. It prints the web address and
three logins (a tenant user, the tenant's admin and a technician), then runs until
Ctrl-C, when it stops every process it started (and only those). State lives in ./demo-run/
(deleted at start).

This script drives both sides through their commands, so it imports neither package.
"""

from __future__ import annotations

import argparse
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
SSHD = "/usr/sbin/sshd"
TENANT = "demo"
AGENT = "demo-site"
EMAIL = "demo@example.com"
TECH_EMAIL = "tech@example.com"
ADMIN_EMAIL = "admin@example.com"  # the tenant's own administrator (users, scopes, audit)
SITE_ZONE = "Europe/London"  # the demo site; rated with the London dial plan and britline
PG_BIN = Path("/usr/lib/postgresql/15/bin")
STOP_GRACE_SECONDS = 15.0  # for all processes together, then what is left is killed
LIVE_HISTORY = timedelta(minutes=30)  # the simulated PBXs' calls start this long before now
SMDR_MEAN_GAP = 30  # seconds between MiVB calls: about 60 at once, then one every half minute
# The demo company's directory: every extension the simulated PBXs use (MiVB stations, MCS
# extensions, Lync users by SIP address), so calls show a person and a department.
DIRECTORY_SINCE = "2025-01-01"
DIRECTORY = (
    # extension, person, department, cost centre, site
    ("2201", "Ann Archer", "Sales", "CC-100", "London"),
    ("2202", "Bob Baker", "Sales", "CC-100", "London"),
    ("2203", "Cath Cole", "Support", "CC-200", "London"),
    ("2204", "Dev Dhillon", "Support", "CC-200", "London"),
    ("2230", "Eve Evans", "Finance", "CC-300", "London"),
    ("2245", "Fay Fox", "Finance", "CC-300", "London"),
    ("2301", "Gus Grant", "Operations", "CC-400", "Leeds"),
    ("2310", "Hal Hart", "Operations", "CC-400", "Leeds"),
    ("2318", "Ivy Iles", "Support", "CC-200", "Leeds"),
    ("2400", "Jo Jones", "Sales", "CC-100", "Leeds"),
    ("2417", "Kit King", "Operations", "CC-400", "Leeds"),
    ("alice@example.com", "Alice Adams", "Sales", "CC-100", "London"),
    ("bob@example.com", "Bob Brown", "Support", "CC-200", "London"),
    ("carol@example.com", "Carol Clark", "Finance", "CC-300", "London"),
    ("dave@example.com", "Dave Doyle", "Operations", "CC-400", "Leeds"),
    ("erin@example.com", "Erin Ellis", "Sales", "CC-100", "Leeds"),
)


@dataclass
class Demo:
    """The processes of one demo run; stops them in reverse order."""

    run_dir: Path
    web_port: int
    smdr_port: int
    sftp_port: int
    smdr_calls: int
    seed: int
    smdr_start: datetime | None = None
    ipsmdr_port: int = 0
    metrics_port: int = 0  # the agent's Prometheus metrics (docs/health.md)
    pg_port: int = 0
    procs: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    cleanup: list[Path] = field(default_factory=list)  # folders outside run_dir to remove

    @property
    def dc_config(self) -> Path:
        return self.run_dir / "datacenter.toml"

    @property
    def agent_config(self) -> Path:
        return self.run_dir / "agent.toml"

    @property
    def agent_bundle(self) -> Path:
        """The appliance's copy of the data centre's certificates (delivery.datacentre_certificates)."""
        return self.run_dir / "agent-datacentre-certificates.pem"

    def start(self, name: str, *argv: str | Path, user: str | None = None) -> None:
        log = (self.run_dir / "logs" / f"{name}.log").open("ab")
        with log:
            proc = subprocess.Popen(
                [str(a) for a in argv], stdout=log, stderr=log, user=user,
                cwd="/" if user else self.run_dir,  # another user may not enter the run dir
            )  # fmt: skip
        self.procs.append((name, proc))

    def stop_all(self) -> None:
        """SIGTERM to every process at once (newest first), then one shared 15 s grace period:
        stopped one after another with 15 s each, a loaded machine took over a minute."""
        running = [(name, proc) for name, proc in reversed(self.procs) if proc.poll() is None]
        for _name, proc in running:
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for name, proc in running:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"demo: {name} did not stop in {STOP_GRACE_SECONDS:g} s; killing it",
                      file=sys.stderr)  # fmt: skip
                proc.kill()
                proc.wait()
        self.procs.clear()
        for path in self.cleanup:
            shutil.rmtree(path, ignore_errors=True)

    def check_alive(self) -> None:
        for name, proc in self.procs:
            if proc.poll() is not None:
                log = self.run_dir / "logs" / f"{name}.log"
                tail = log.read_text(errors="replace").splitlines()[-15:]
                raise SystemExit(
                    f"demo: {name} exited with code {proc.returncode}; last lines of {log}:\n"
                    + "\n".join(tail)
                )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, demo: Demo, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        demo.check_alive()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"demo: nothing listened on 127.0.0.1:{port} after {timeout} s")


def wait_for_log(name: str, text: str, demo: Demo, timeout: float = 30.0) -> None:
    log = demo.run_dir / "logs" / f"{name}.log"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        demo.check_alive()
        if log.exists() and text in log.read_text(errors="replace"):
            return
        time.sleep(0.1)
    raise SystemExit(f"demo: {name} did not report '{text}' within {timeout} s")


def run(*argv: str | Path, stdin: str | None = None, user: str | None = None) -> None:
    result = subprocess.run(
        [str(a) for a in argv], input=stdin, text=True, capture_output=True, check=False, user=user
    )
    if result.returncode != 0:
        raise SystemExit(
            f"demo: {' '.join(map(str, argv))} failed:\n{result.stderr}{result.stdout}"
        )


def keygen(path: Path) -> None:
    run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "callcollect-demo", "-f", path)


def write_sshd(demo: Demo) -> Path:
    """sshd as the landing area: key auth only, SFTP only, sessions start in the tenant folder."""
    ssh = demo.run_dir / "ssh"
    ssh.mkdir()
    keygen(ssh / "host_ed25519")
    keygen(ssh / "agent_ed25519")
    auth = ssh / "authorized_keys"
    shutil.copy(ssh / "agent_ed25519.pub", auth)
    auth.chmod(0o600)
    landing = demo.run_dir / "landing" / TENANT
    user = pwd.getpwuid(os.getuid()).pw_name
    config = ssh / "sshd_config"
    config.write_text(
        f"Port {demo.sftp_port}\nListenAddress 127.0.0.1\nHostKey {ssh / 'host_ed25519'}\n"
        f"PidFile {ssh / 'sshd.pid'}\nAuthorizedKeysFile {auth}\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
        f"AllowUsers {user}\nPermitRootLogin prohibit-password\nAllowTcpForwarding no\n"
        "X11Forwarding no\nPermitTTY no\nSubsystem sftp internal-sftp\n"
        f"ForceCommand internal-sftp -d {landing}\n"
    )
    host_pub = (ssh / "host_ed25519.pub").read_text().split()
    (ssh / "known_hosts").write_text(f"[127.0.0.1]:{demo.sftp_port} {host_pub[0]} {host_pub[1]}\n")
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    run(SSHD, "-t", "-f", config)
    return config


def write_configs(demo: Demo) -> str:
    data = demo.run_dir / "dc"
    demo.dc_config.write_text(
        "# Data centre settings for the demo (see docs/configuration.md)\n"
        f'data_dir = "{data}"\n\n[store]\nurl = "sqlite:///{data}/callcollect.db"\n\n'
        f'[landing]\nroot = "{demo.run_dir / "landing"}"\n\n'
        f'[web]\nbind = "127.0.0.1:{demo.web_port}"\nworkers = 2\n\n[ingest]\npoll_seconds = 2\n'
    )
    user = pwd.getpwuid(os.getuid()).pw_name
    ssh = demo.run_dir / "ssh"
    demo.agent_config.write_text(
        "# Edge agent settings for the demo site (see edge_agent/agent.example.toml)\n"
        f'[agent]\nid = "{AGENT}"\ntenant = "{TENANT}"\ntimezone = "{SITE_ZONE}"\n'
        f'state_dir = "{demo.run_dir / "agent"}"\n\n'
        f'[uplink]\nhost = "127.0.0.1"\nport = {demo.sftp_port}\nusername = "{user}"\n'
        f'private_key = "{ssh / "agent_ed25519"}"\nknown_hosts = "{ssh / "known_hosts"}"\n'
        "interval_seconds = 5\n\n[spool]\nbatch_max_age_seconds = 5\n\n"
        f'[metrics]\nlisten = "127.0.0.1:{demo.metrics_port}"\n\n'  # off on the appliance, on here
        # protection "cms" (the default): signed by the agent, encrypted to the data centre
        f'[delivery]\ndatacentre_certificates = "{demo.agent_bundle}"\n\n'
        f'[[sources]]\nid = "mivb-london"\nkind = "mivb-smdr"\nhost = "127.0.0.1"\nport = {demo.smdr_port}\n'
        'layout = "auto"\n\n'
        f'[[sources]]\nid = "mcs1"\nkind = "mcs-ipsmdr"\nhost = "127.0.0.1"\nport = {demo.ipsmdr_port}\n'
        'pad_character = "0"\n\n'
        f'[[sources]]\nid = "lync1"\nkind = "lync-cdr"\nconnection_string = "{lcscdr_odbc(demo)}"\n'
        "poll_interval_seconds = 15\nsettle_seconds = 5\n"
    )
    return secrets.token_urlsafe(12)


def lcscdr_odbc(demo: Demo) -> str:
    return (
        "DRIVER={PostgreSQL Unicode};SERVER=127.0.0.1;"
        f"PORT={demo.pg_port};DATABASE=LcsCDR;UID=postgres;BoolsAsChar=0;"
    )


def quiet_psqlodbc(demo: Demo) -> None:
    """The demo's processes read a copy of odbcinst.ini with psqlODBC's CommLog off.

    Debian registers psqlODBC with ``CommLog=1``, which leaves a /tmp/psqlodbc_*.log behind
    every process that connects (``CommLog=0`` in the connection string does not stop it).
    The agent inherits ``ODBCSYSINI`` from this process.
    """
    system = Path("/etc/odbcinst.ini")
    if not system.exists():
        return
    folder = demo.run_dir / "odbc"
    folder.mkdir()
    lines = system.read_text().splitlines()
    quiet = [
        "CommLog=0" if line.replace(" ", "").lower() == "commlog=1" else line for line in lines
    ]
    (folder / "odbcinst.ini").write_text("\n".join(quiet) + "\n")
    os.environ["ODBCSYSINI"] = str(folder)


def start_lcscdr(demo: Demo) -> None:
    """The Lync monitoring database's stand-in: a throwaway PostgreSQL cluster with schema dbo,
    filled by `edge-agent simulate lync-cdr` with sessions of every kind, starting 2 h ago."""
    # Outside the run dir: PostgreSQL runs as its own user, who may not enter it.
    pg = Path(tempfile.mkdtemp(prefix="callcollect-demo-pg-"))
    demo.cleanup.append(pg)
    shutil.chown(pg, "postgres", "postgres")
    run(PG_BIN / "initdb", "-D", pg / "data", "-A", "trust", "--no-sync", "-U", "postgres",
        user="postgres")  # fmt: skip
    demo.start("lcscdr-postgres", PG_BIN / "postgres", "-D", pg / "data", "-p", str(demo.pg_port),
               "-k", pg, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", user="postgres")  # fmt: skip
    wait_for_port(demo.pg_port, demo)
    run("psql", "-h", "127.0.0.1", "-p", str(demo.pg_port), "-U", "postgres", "-c",
        'CREATE DATABASE "LcsCDR"')  # fmt: skip
    first = (datetime.now(UTC) - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S")
    run(BIN / "edge-agent", "simulate", "lync-cdr", "--bulk", "40", "--start", first,
        "--db", f"postgresql://postgres@127.0.0.1:{demo.pg_port}/LcsCDR")  # fmt: skip


def start_pbx_simulators(demo: Demo) -> None:
    """The two Mitel simulators, live: calls from a while ago on the site's wall clock, each
    record sent when its call ends (as a PBX writes it), so the list fills at once with the
    calls that already ended and then grows as the others end. No call is in the future."""
    now_local = datetime.now(ZoneInfo(SITE_ZONE)).replace(tzinfo=None, microsecond=0)
    smdr_start = demo.smdr_start or now_local - LIVE_HISTORY
    demo.start("mivb-smdr-simulator", BIN / "edge-agent", "simulate", "mivb-smdr",
               "--port", str(demo.smdr_port), "--live", "--mean-gap", str(SMDR_MEAN_GAP),
               "--count", str(demo.smdr_calls), "--seed", str(demo.seed),
               "--timezone", SITE_ZONE, "--start", smdr_start.isoformat())  # fmt: skip
    demo.start("mcs-ipsmdr-simulator", BIN / "edge-agent", "simulate", "mcs-ipsmdr",
               "--port", str(demo.ipsmdr_port), "--calls", "200", "--live",
               "--timezone", SITE_ZONE,
               "--start", (now_local - LIVE_HISTORY).isoformat(sep=" "))  # fmt: skip
    # Not probed by connecting: a PBX streams SMDR to whoever connects, so a probe would take
    # records meant for the agent. The simulators say when they listen.
    wait_for_log("mivb-smdr-simulator", "MiVB SMDR simulator on", demo)
    wait_for_log("mcs-ipsmdr-simulator", "MCS IP SMDR simulator on", demo)


def set_up_datacenter(demo: Demo, password: str) -> None:
    dc = BIN / "datacenter"
    cfg = ("--config", demo.dc_config)
    run(dc, "init", *cfg)
    run(dc, "tenant", "add", TENANT, "--name", "Demo Company", "--timezone", SITE_ZONE, *cfg)
    run(dc, "user", "add", EMAIL, "--role", "tenant", "--tenant", TENANT, "--password-stdin",
        *cfg, stdin=password + "\n")  # fmt: skip
    run(dc, "user", "add", ADMIN_EMAIL, "--role", "tenant_admin", "--tenant", TENANT,
        "--password-stdin", *cfg, stdin=password + "\n")  # fmt: skip
    run(dc, "user", "add", TECH_EMAIL, "--role", "technician", "--password-stdin",
        *cfg, stdin=password + "\n")  # fmt: skip
    run(dc, "technician", "assign", TECH_EMAIL, TENANT, *cfg)
    rating = ROOT / "datacenter" / "rating" / "demo"
    run(dc, "tariff", "import", "--tenant", TENANT, rating / "britline.toml", *cfg)
    run(dc, "tariff", "set-site", "--tenant", TENANT, "--dial-plan", rating / "london.toml",
        "--carriers", rating / "london-routes.toml", *cfg)  # fmt: skip
    staff = demo.run_dir / "directory.csv"
    staff.write_text(directory_csv())
    run(dc, "directory", "import", staff, "--tenant", TENANT, "--apply", *cfg)


def directory_csv() -> str:
    """``DIRECTORY`` as the CSV `datacenter directory import` reads (docs/directory.md)."""
    lines = ["extension,person,email,department,cost_centre,site,valid_from"]
    for extension, person, department, cost_centre, site in DIRECTORY:
        email = f"{person.split()[0].lower()}@demo.example"
        lines.append(f"{extension},{person},{email},{department},{cost_centre},{site},"
                     f"{DIRECTORY_SINCE}")  # fmt: skip
    return "\n".join(lines) + "\n"


def enrol_agent(demo: Demo) -> None:
    """Exchange certificates as a site and the data centre would (docs/delivery.md).

    The data centre's bundle (made by `datacenter init`) goes to the appliance; `edge-agent
    enroll` makes the appliance's signing key and certificate; the data centre pins that
    certificate with `datacenter agent add --certificate`.
    """
    shutil.copy(demo.run_dir / "dc" / "keys" / "datacentre-certificates.pem", demo.agent_bundle)
    run(BIN / "edge-agent", "enroll", "-c", demo.agent_config)
    certificate = demo.run_dir / "agent" / "identity" / "agent.crt"
    run(BIN / "datacenter", "agent", "add", "--tenant", TENANT, AGENT, "--certificate",
        certificate, "--config", demo.dc_config)  # fmt: skip


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    # Ctrl-C is how the demo stops, even when it was started with SIGINT ignored (what a
    # background job of a script, nohup or a CI runner hands down: Python then never raises
    # KeyboardInterrupt); SIGTERM stops it the same way.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--web-port", type=int, default=8080)
    parser.add_argument("--smdr-calls", type=int, default=5000, help="SMDR calls to play")
    parser.add_argument(
        "--seed", type=int, default=1, help="simulator seed (same seed, same calls)"
    )
    parser.add_argument(
        "--smdr-start",
        type=datetime.fromisoformat,
        default=None,
        help="site wall-clock time of the first SMDR call (default: 30 minutes ago)",
    )
    parser.add_argument("--run-dir", type=Path, default=ROOT / "demo-run")
    parser.add_argument("--seconds", type=float, default=0, help="stop after this long (0: Ctrl-C)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("demo: run as root (sshd needs it): sudo bash scripts/demo.sh")
    run_dir: Path = args.run_dir.resolve()
    shutil.rmtree(run_dir, ignore_errors=True)
    (run_dir / "logs").mkdir(parents=True)
    (run_dir / "landing" / TENANT / "incoming").mkdir(parents=True)
    demo = Demo(run_dir=run_dir, web_port=args.web_port, smdr_port=free_port(),
                sftp_port=free_port(), smdr_calls=args.smdr_calls,
                seed=args.seed, smdr_start=args.smdr_start, ipsmdr_port=free_port(),
                pg_port=free_port(), metrics_port=free_port())  # fmt: skip
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        password = write_configs(demo)
        sshd_config = write_sshd(demo)
        set_up_datacenter(demo, password)
        enrol_agent(demo)
        demo.start("sshd", SSHD, "-D", "-e", "-f", sshd_config)
        demo.start("web", BIN / "datacenter", "serve", "--config", demo.dc_config)
        demo.start("ingest", BIN / "datacenter", "ingest", "--watch", "--config", demo.dc_config)
        demo.start("alarms", BIN / "datacenter", "alarms", "run", "--config", demo.dc_config)
        quiet_psqlodbc(demo)
        start_lcscdr(demo)
        start_pbx_simulators(demo)
        wait_for_port(demo.sftp_port, demo)
        demo.start("edge-agent", BIN / "edge-agent", "run", "-c", demo.agent_config)
        wait_for_port(demo.web_port, demo)
        print(
            "\ncallcollect demo is running (logs in demo-run/logs/).\n"
            f"  Open:     http://127.0.0.1:{demo.web_port}/\n"
            f"  Tenant:     {EMAIL}  password {password}  (the call list)\n"
            f"  Tenant admin: {ADMIN_EMAIL}  password {password}  (users, scopes, audit log)\n"
            f"  Technician: {TECH_EMAIL}  password {password}  (site health console)\n"
            f"  Metrics:    http://127.0.0.1:{demo.web_port}/metrics (data centre), "
            f"http://127.0.0.1:{demo.metrics_port}/metrics (agent)\n"
            "Calls of the last half hour appear within a minute, priced (britline's demo UK "
            "tariff); new ones as they end. Ctrl-C stops everything.\n",
            flush=True,
        )
        deadline = time.monotonic() + args.seconds if args.seconds else None
        while deadline is None or time.monotonic() < deadline:
            demo.check_alive()
            time.sleep(1)
    except KeyboardInterrupt:
        print("\ndemo: stopping", flush=True)
    finally:
        demo.stop_all()


if __name__ == "__main__":
    main()
