"""Every command of both CLIs keeps the exit-code promise of docs/operations.md.

The commands are enumerated from the click groups, so a new command is covered at once: it fails
here until ``SPEC`` says how to call it for each kind of failure (or why that kind cannot happen
to it). Each call runs through click's ``CliRunner``, which calls ``main`` exactly as the
installed entry point does (standalone mode, ``sys.exit`` codes); two subprocess runs confirm the
installed scripts agree. The code each error class exits with, and what its message names, are
read from the doc's table, so the doc, the error tree and the commands cannot drift apart.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
import pkgutil
import re
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from datacenter.cli import main as datacenter_main
from edge_agent.cli import main as agent_main
from shared import keys
from shared.enrolment import EnrolmentRequest
from shared.errors import CallCollectError

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = ROOT / "docs" / "operations.md"
DEMO = ROOT / "datacenter" / "rating" / "demo"  # valid tariff and dial-plan files
CLIS: dict[str, click.Group] = {"edge-agent": agent_main, "datacenter": datacenter_main}
KINDS = ("bad-syntax", "wrong-type", "missing-file", "refused")
ROW = re.compile(r"^\| (\d+) \| `(\w+)` \| ([^|]+?) \|")


@dataclass(frozen=True, slots=True)
class Documented:
    code: int
    names: tuple[str, ...]  # what the message names: "key", "path", "address", "option", ...


def documented() -> dict[str, Documented]:
    """The exit-code table of docs/operations.md: error class -> code and what it names."""
    section = OPERATIONS.read_text(encoding="utf-8").split("## Exit codes", 1)[1].split("\n## ")[0]
    table: dict[str, Documented] = {}
    for line in section.splitlines():
        match = ROW.match(line)
        if match:
            code, name, names = match.groups()
            words = tuple(w.removeprefix("the ").strip() for w in names.split(" or "))
            table[name] = Documented(int(code), words)
    return table


def commands(group: click.Group, prefix: str) -> Iterator[str]:
    # list_commands/get_command, not .commands: the top-level groups import commands lazily
    ctx = click.Context(group, info_name=prefix)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, f"{prefix} {name} is listed but cannot be loaded"
        if isinstance(command, click.Group):
            yield from commands(command, f"{prefix} {name}")
        else:
            yield f"{prefix} {name}"


ALL_COMMANDS = [path for prog, group in CLIS.items() for path in commands(group, prog)]


# --- the site every call runs against ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Site:
    """Config files (broken in each way) and ports nothing answers on, under one tmp folder."""

    root: Path
    closed_port: int  # nothing listens: a connect is refused
    busy_port: int  # a listener the test holds: a simulator cannot listen there

    @property
    def missing(self) -> Path:
        return self.root / "no-such-dir" / "no-such-file.toml"

    def file(self, name: str) -> Path:
        return self.root / name


AGENT_BASE = """\
[agent]
id = "agent-1"
tenant = "demo"
timezone = "Europe/London"
state_dir = "state"
[uplink]
host = "127.0.0.1"
port = {port}
username = "u"
private_key = "uplink_key"
known_hosts = "known_hosts"
connect_timeout_seconds = 5.0
[delivery]
protection = "none"
[[sources]]
id = "pbx-1"
kind = "mivb-smdr"
host = "127.0.0.1"
port = {port}
"""


def make_site(root: Path, closed_port: int, busy_port: int) -> Site:
    site = Site(root, closed_port, busy_port)
    for name in ("uplink_key", "host_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / name)],
                       check=True)  # fmt: skip
    identity = keys.new_agent_identity("agent-1")  # a certificate the commands accept
    (root / "agent.crt").write_bytes(keys.certificate_pem(identity.certificate))
    host_key = " ".join((root / "host_key.pub").read_text().split()[:2])
    (root / "known_hosts").write_text(f"[127.0.0.1]:{closed_port} {host_key}\n")
    agent = AGENT_BASE.format(port=closed_port)
    (root / "agent-refused.toml").write_text(agent)
    (root / "agent-syntax.toml").write_text(agent + "[spool\n")
    (root / "agent-type.toml").write_text(agent + '[spool]\nquota_mb = "lots"\n')
    store = f"postgresql+psycopg://callcollect@127.0.0.1:{closed_port}/callcollect"
    dc = f'data_dir = "{root / "dc"}"\n[store]\nurl = "{store}"\n'
    (root / "dc-refused.toml").write_text(dc)
    (root / "dc-syntax.toml").write_text(dc + "[web\n")
    (root / "dc-type.toml").write_text(dc + '[web]\nworkers = "many"\n')
    missing_bundle = root / "no-such-dir" / "certificates.pem"
    (root / "dc-no-bundle.toml").write_text(dc + f'[keys]\ncertificates = "{missing_bundle}"\n')
    return site


# --- how each command is called for each kind of failure --------------------------------------


@dataclass(frozen=True, slots=True)
class Call:
    """One invocation, the error class it must end with, and what its message must name."""

    args: list[str]
    error: str
    needles: dict[str, str] = field(default_factory=dict)  # "key"/"path"/... -> expected text
    input: str | None = None


@dataclass(frozen=True, slots=True)
class NotApplicable:
    reason: str


Case = Callable[[Site], Call] | NotApplicable
Spec = dict[str, Case]


def agent_config_cases(*args: str) -> Spec:
    """The three config failures of an agent command that reads ``-c``."""
    return {
        "bad-syntax": lambda s: Call(
            [*args, "-c", str(s.file("agent-syntax.toml"))], "ConfigError",
            {"key": str(s.file("agent-syntax.toml"))},
        ),
        "wrong-type": lambda s: Call(
            [*args, "-c", str(s.file("agent-type.toml"))], "ConfigError", {"key": "spool.quota_mb"}
        ),
        "missing-file": lambda s: Call(
            [*args, "-c", str(s.missing)], "ConfigError", {"key": str(s.missing)}
        ),
    }  # fmt: skip


def dc_config_cases(*args: str, input: str | None = None) -> Spec:
    """The three config failures of a data-centre command, and a refused store connection."""
    return {
        "bad-syntax": lambda s: Call(
            [*args, "--config", str(s.file("dc-syntax.toml"))], "ConfigError",
            {"key": "--config"}, input,
        ),
        "wrong-type": lambda s: Call(
            [*args, "--config", str(s.file("dc-type.toml"))], "ConfigError",
            {"key": "web.workers"}, input,
        ),
        "missing-file": lambda s: Call(
            [*args, "--config", str(s.missing)], "ConfigError", {"key": "--config"}, input
        ),
        "refused": lambda s: Call(
            [*args, "--config", str(s.file("dc-refused.toml"))], "StoreError",
            {"address": f"127.0.0.1:{s.closed_port}"}, input,
        ),
    }  # fmt: skip


def usage_missing(*args: str) -> Callable[[Site], Call]:
    """A command-line input file that does not exist: click's usage error naming the path."""
    return lambda s: Call([*args, str(s.missing)], "UsageError", {"path": str(s.missing)})


def request_line(site: Site) -> str:
    """An enrolment request for agent-1 of demo, made of the site's public items."""
    (certificate,) = keys.load_certificates(site.file("agent.crt"))
    ssh = site.file("uplink_key.pub").read_text()
    return EnrolmentRequest("demo", "agent-1", certificate, ssh).to_line()


def approve_case(kind: str) -> Callable[[Site], Call]:
    """`agent approve` with a valid request and the config failure ``kind``."""

    def call(site: Site) -> Call:
        args = ["agent", "approve", request_line(site), "--landing-host", "h", "--host-key",
                str(site.file("host_key.pub")), "--no-system-user"]  # fmt: skip
        case = dc_config_cases(*args)[kind]
        assert not isinstance(case, NotApplicable)
        return case(site)

    return call


NO_CONFIG = NotApplicable("takes no configuration file")
NO_CONNECT = NotApplicable("connects to nothing")
TENANT = ("--tenant", "demo")


def _directory_import_cases() -> Spec:
    def with_csv(case: Case) -> Case:
        assert not isinstance(case, NotApplicable)

        def call(s: Site) -> Call:
            made = case(s)
            csv = s.file("directory.csv")
            csv.write_text("extension,person\n201,Ann\n")
            return Call(["directory", "import", str(csv), *made.args[2:]], made.error,
                        made.needles, made.input)  # fmt: skip

        return call

    cases = dc_config_cases("directory", "import", "--tenant", "demo")
    return {kind: with_csv(case) for kind, case in cases.items()}


SPEC: dict[str, Spec] = {
    # --- edge-agent ---
    "edge-agent check": agent_config_cases("check") | {
        "refused": lambda s: Call(["check", "--connect", "-c", str(s.file("agent-refused.toml"))],
                                  "TransportError", {"address": f"127.0.0.1:{s.closed_port}"}),
    },
    "edge-agent run": agent_config_cases("run") | {
        "refused": NotApplicable("a refused PBX or uplink is retried with back-off, never fatal"),
    },
    "edge-agent status": agent_config_cases("status") | {"refused": NO_CONNECT},
    "edge-agent flush": agent_config_cases("flush") | {
        "refused": lambda s: Call(["flush", "-c", str(s.file("agent-refused.toml"))],
                                  "TransportError", {"address": f"127.0.0.1:{s.closed_port}"}),
    },
    "edge-agent enroll": agent_config_cases("enroll") | {"refused": NO_CONNECT},
    "edge-agent resend": agent_config_cases("resend", "--since", "2024-01-01")
    | {"refused": NotApplicable("queues batches for the next upload; connects to nothing")},
    "edge-agent spool rebuild": agent_config_cases("spool", "rebuild")
    | {"refused": NotApplicable("rebuilds from local files; connects to nothing")},
    "edge-agent test-source": agent_config_cases("test-source") | {
        "refused": lambda s: Call(
            ["test-source", "--kind", "lync-cdr", "-o",
             "connection_string=Driver={PostgreSQL Unicode};Server=127.0.0.1;"
             f"Port={s.closed_port};Database=x;Uid=u;Pwd=p;"],
            "SourceError", {"address": f"SERVER=127.0.0.1;PORT={s.closed_port}"},
        ),
    },
    "edge-agent parse": {
        "bad-syntax": NO_CONFIG, "wrong-type": NO_CONFIG, "refused": NO_CONNECT,
        "missing-file": usage_missing("parse", "mivb-smdr"),
    },
    "edge-agent simulate mivb-smdr": {
        "bad-syntax": NO_CONFIG, "wrong-type": NO_CONFIG,
        "missing-file": lambda s: Call(["simulate", "mivb-smdr", "--count", "1", "--write",
                                        str(s.missing)], "UsageError", {"path": str(s.missing)}),
        "refused": lambda s: Call(["simulate", "mivb-smdr", "--count", "1", "--port",
                                   str(s.busy_port)], "SourceError",
                                  {"address": f"127.0.0.1:{s.busy_port}"}),
    },
    "edge-agent simulate lync-cdr": {
        "bad-syntax": NO_CONFIG, "wrong-type": NO_CONFIG, "missing-file": NO_CONFIG,
        "refused": lambda s: Call(["simulate", "lync-cdr", "--db",
                                   f"host=127.0.0.1 port={s.closed_port} dbname=x user=u "
                                   "connect_timeout=5"],
                                  "SourceError", {"address": f"port {s.closed_port}"}),
    },
    "edge-agent simulate mcs-ipsmdr": {
        "bad-syntax": NO_CONFIG, "wrong-type": NO_CONFIG, "missing-file": NO_CONFIG,
        "refused": lambda s: Call(["simulate", "mcs-ipsmdr", "--calls", "1", "--push",
                                   f"127.0.0.1:{s.closed_port}"], "SourceError",
                                  {"address": f"127.0.0.1:{s.closed_port}"}),
    },
    "edge-agent simulate mivo250-smdr": {
        "bad-syntax": NO_CONFIG, "wrong-type": NO_CONFIG, "missing-file": NO_CONFIG,
        "refused": lambda s: Call(["simulate", "mivo250-smdr", "--port", str(s.busy_port)],
                                  "SourceError", {"address": f"127.0.0.1:{s.busy_port}"}),
    },
    "edge-agent simulate mivo250-oai": {
        "bad-syntax": NO_CONFIG, "wrong-type": NO_CONFIG, "missing-file": NO_CONFIG,
        "refused": lambda s: Call(["simulate", "mivo250-oai", "--port", str(s.busy_port)],
                                  "SourceError", {"address": f"127.0.0.1:{s.busy_port}"}),
    },
    # --- datacenter ---
    "datacenter serve": dc_config_cases("serve"),
    "datacenter init": dc_config_cases("init"),
    "datacenter ingest": dc_config_cases("ingest", "--once"),
    "datacenter tenant add": dc_config_cases("tenant", "add", "demo", "--name", "Demo"),
    "datacenter tenant list": dc_config_cases("tenant", "list"),
    "datacenter agent add": dc_config_cases("agent", "add", "agent-1", *TENANT),
    "datacenter agent certificate": {
        **dc_config_cases("agent", "certificate", "agent-1", "agent.crt", *TENANT),
        "missing-file": usage_missing("agent", "certificate", "agent-1", *TENANT),
    },
    "datacenter agent list": dc_config_cases("agent", "list"),
    "datacenter agent approve": {
        **{kind: approve_case(kind) for kind in ("bad-syntax", "wrong-type", "refused")},
        "missing-file": lambda s: Call(
            ["agent", "approve", request_line(s), "--landing-host", "h", "--host-key",
             str(s.missing)], "UsageError", {"path": str(s.missing)},
        ),
    },
    "datacenter agent rotate": {
        **dc_config_cases("agent", "rotate", "agent-1", "agent.crt", *TENANT),
        "missing-file": usage_missing("agent", "rotate", "agent-1", *TENANT),
    },
    "datacenter user add": dc_config_cases("user", "add", "a@example.org", "--role", "admin",
                                           "--password-stdin", input="correct horse battery\n"),
    "datacenter user list": dc_config_cases("user", "list"),
    "datacenter token create": dc_config_cases("token", "create", "--user", "a@example.org",
                                               "--name", "n"),
    "datacenter token list": dc_config_cases("token", "list", "--user", "a@example.org"),
    "datacenter token revoke": dc_config_cases("token", "revoke", "--user", "a@example.org", "1"),
    # Any existing UTF-8 file does as the CSV: the store is opened before it is parsed.
    "datacenter directory import": _directory_import_cases(),
    "datacenter directory list": dc_config_cases("directory", "list", "--tenant", "demo"),
    "datacenter directory sync": dc_config_cases("directory", "sync", "--tenant", "demo",
                                                 "--source", "unused-until-the-store-opens.toml"),
    "datacenter user unlock": dc_config_cases("user", "unlock", "a@example.org"),
    "datacenter rate": {
        "bad-syntax": NO_CONFIG, "wrong-type": NO_CONFIG, "refused": NO_CONNECT,
        "missing-file": lambda s: Call(
            ["rate", "--dial-plan", str(ROOT / "pyproject.toml"), "--tariff", str(s.missing)],
            "UsageError", {"path": str(s.missing), "option": "--tariff"},
        ),
    },
    "datacenter tariff import": {
        **dc_config_cases("tariff", "import", *TENANT, str(DEMO / "britline.toml")),
        "missing-file": usage_missing("tariff", "import", *TENANT),
    },
    "datacenter tariff set-site": {
        **dc_config_cases("tariff", "set-site", *TENANT, "--dial-plan", str(DEMO / "london.toml")),
        "missing-file": usage_missing("tariff", "set-site", *TENANT, "--dial-plan"),
    },
    "datacenter tariff list": dc_config_cases("tariff", "list", *TENANT),
    "datacenter tariff export": dc_config_cases("tariff", "export", *TENANT, "--carrier", "x",
                                                "out"),
    "datacenter rerate": dc_config_cases("rerate", *TENANT, "--since", "2024-01-01"),
    "datacenter rollups rebuild": dc_config_cases("rollups", "rebuild", *TENANT, "--check"),
    "datacenter store stats": dc_config_cases("store", "stats", "--json"),
    "datacenter jobs list": dc_config_cases("jobs", "list", "--json"),
    "datacenter jobs run": dc_config_cases("jobs", "run"),
    "datacenter store partitions": dc_config_cases("store", "partitions", "--ahead", "1"),
    "datacenter store delete-calls": dc_config_cases(
        "store", "delete-calls", *TENANT, "--before", "2024-01-01"
    ),
    "datacenter alarms run": dc_config_cases("alarms", "run", "--once"),
    "datacenter reports run-due": dc_config_cases("reports", "run-due"),
    "datacenter recordings policy": dc_config_cases("recordings", "policy", "demo"),
    "datacenter recordings permit": dc_config_cases("recordings", "permit", "a@example.org"),
    "datacenter recordings purge": dc_config_cases("recordings", "purge"),
    "datacenter cost-alarms rules show": dc_config_cases("cost-alarms", "rules", "show", *TENANT),
    "datacenter cost-alarms rules set": dc_config_cases(
        "cost-alarms", "rules", "set", *TENANT, str(ROOT / "pyproject.toml")
    ),
    "datacenter cost-alarms rules check": {
        "bad-syntax": NO_CONFIG, "wrong-type": NO_CONFIG, "refused": NO_CONNECT,
        "missing-file": usage_missing("cost-alarms", "rules", "check"),
    },
    "datacenter cost-alarms secret": dc_config_cases("cost-alarms", "secret", *TENANT),
    "datacenter cost-alarms list": dc_config_cases("cost-alarms", "list", *TENANT),
    "datacenter cost-alarms run": dc_config_cases("cost-alarms", "run"),
    "datacenter technician assign": dc_config_cases("technician", "assign", "a@example.org",
                                                    "demo"),
    "datacenter technician unassign": dc_config_cases("technician", "unassign", "a@example.org",
                                                      "demo"),
    "datacenter technician list": dc_config_cases("technician", "list"),
    "datacenter keys init": dc_config_cases("keys", "init") | {"refused": NO_CONNECT},
    "datacenter keys show": dc_config_cases("keys", "show") | {
        "refused": NO_CONNECT,
        "missing-file": lambda s: Call(
            ["keys", "show", "--config", str(s.file("dc-no-bundle.toml"))], "KeyFileError",
            {"path": str(s.missing.parent / "certificates.pem")},
        ),
    },
    "datacenter keys rotate-envelope": dc_config_cases("keys", "rotate-envelope") | {
        "refused": NO_CONNECT,
        "missing-file": lambda s: Call(
            ["keys", "rotate-envelope", "--config", str(s.file("dc-no-bundle.toml"))],
            "KeyFileError", {"path": str(s.missing.parent / "certificates.pem")},
        ),
    },
}  # fmt: skip


def applicable() -> Iterator[tuple[str, str]]:
    for command in ALL_COMMANDS:
        for kind in KINDS:
            if not isinstance(SPEC.get(command, {}).get(kind), NotApplicable):
                yield command, kind


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with socket.socket() as closed, socket.socket() as busy:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: connects are refused
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        yield make_site(
            tmp_path_factory.mktemp("exit-codes"),
            closed.getsockname()[1],
            busy.getsockname()[1],
        )


@pytest.fixture(autouse=True)
def no_dc_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings come from the files here only, never from the caller's environment."""
    for name in list(os.environ):
        if name.startswith("CALLCOLLECT_DC_"):
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def root_logger_kept() -> Iterator[None]:
    """`edge-agent run` configures the root logger in-process; later tests get it back as it was."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


# --- tests -------------------------------------------------------------------------------------


def test_every_command_says_how_each_failure_is_exercised() -> None:
    unknown = {c: [k for k in KINDS if k not in SPEC.get(c, {})] for c in ALL_COMMANDS}
    assert {c: k for c, k in unknown.items() if k} == {}, "add these to SPEC"
    assert set(SPEC) <= set(ALL_COMMANDS), "SPEC names commands that no longer exist"


@pytest.mark.parametrize(("command", "kind"), list(applicable()))
def test_failure_exits_with_the_documented_code_and_message(
    site: Site, monkeypatch: pytest.MonkeyPatch, command: str, kind: str
) -> None:
    prog = command.split()[0]
    case = SPEC[command][kind]
    assert not isinstance(case, NotApplicable)
    call = case(site)
    monkeypatch.chdir(site.root)
    result = CliRunner().invoke(CLIS[prog], call.args, input=call.input, prog_name=prog)
    table = documented()
    assert call.error in table, f"{call.error} is not in docs/operations.md's table"
    row = table[call.error]
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), f"{command}: {result.exception!r}"
    errors = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert result.exit_code == row.code and errors, (
        f"{command} ({kind}) exited {result.exit_code}, documented {row.code} for "
        f"{call.error}:\n{result.output}"
    )
    message = " ".join(errors)
    named = {name: call.needles[name] for name in row.names if name in call.needles}
    assert named, f"the case gives none of what {call.error}'s message names: {row.names}"
    assert any(text in message for text in named.values()), (
        f"{command} ({kind}): the message must name the {' or '.join(named)} "
        f"({list(named.values())}): {message}"
    )


@pytest.mark.parametrize("command", ALL_COMMANDS)
def test_help_exits_0_and_points_at_the_doc_for_exit_codes(command: str) -> None:
    prog, *path = command.split()
    result = CliRunner().invoke(CLIS[prog], [*path, "--help"], prog_name=prog)
    assert result.exit_code == 0, result.output
    if re.search(r"\bexit(s| status| code)?\b[^.]*\d", result.output, re.IGNORECASE):
        assert "docs/operations.md" in result.output, f"{command} lists exit codes on its own"


def error_classes() -> Iterator[type[CallCollectError]]:
    """Every CallCollectError subclass defined in the three packages (all modules imported)."""
    for package in ("shared", "edge_agent", "datacenter"):
        root = importlib.import_module(package)
        for module in pkgutil.walk_packages(root.__path__, f"{package}."):
            if ".migrations" not in module.name and not module.name.endswith(".wsgi"):
                importlib.import_module(module.name)
    seen: list[type[CallCollectError]] = [CallCollectError]
    for cls in seen:
        seen.extend(cls.__subclasses__())
    for cls in seen:
        if cls.__module__.split(".")[0] in ("shared", "edge_agent", "datacenter"):
            yield cls


def test_every_error_class_is_in_the_tree_the_table_and_the_docstring() -> None:
    table = documented()
    tree = inspect.getdoc(importlib.import_module("shared.errors")) or ""
    problems = []
    for cls in error_classes():
        row = table.get(cls.__name__)
        if row is None:
            problems.append(f"{cls.__module__}.{cls.__name__} is not in docs/operations.md")
        elif row.code != cls.exit_code:
            problems.append(f"{cls.__name__} exits {cls.exit_code}, documented {row.code}")
        if not re.search(rf"(── |^\s*){cls.__name__}\s+{cls.exit_code}\b", tree, re.MULTILINE):
            problems.append(f"{cls.__name__} is not drawn with code {cls.exit_code} in the tree")
        if "exit_code" not in vars(cls):
            problems.append(f"{cls.__module__}.{cls.__name__} does not carry its own exit_code")
    names = [cls.__name__ for cls in error_classes()]
    problems += [f"two classes named {n}" for n in set(names) if names.count(n) > 1]
    assert problems == []


@pytest.mark.parametrize("prog", list(CLIS))
def test_the_installed_entry_points_exit_alike(site: Site, prog: str) -> None:
    script = Path(sys.executable).parent / prog
    config = site.file("agent-syntax.toml" if prog == "edge-agent" else "dc-syntax.toml")
    args = (
        ["status", "-c", str(config)] if prog == "edge-agent" else ["init", "--config", str(config)]
    )
    done = subprocess.run([str(script), *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == documented()["ConfigError"].code, done.stderr
    assert done.stderr.startswith("Error: config key ") and "Traceback" not in done.stderr
