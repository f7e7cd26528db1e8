"""A whole site, run for real, for fault injection: PBX simulator -> agent -> sshd -> ingest -> store.

Contract:

- ``Site`` owns one of everything: the MiVB SMDR simulator (``SmdrSimulatorServer``) streaming a
  known list of generated calls at a steady rate; the agent as a real subprocess
  (``edge-agent run -c CONFIG``, so ``kill -9`` is a real kill); the real OpenSSH landing area
  (``tests/fixtures/sshd.py``, stopped and started by the tests); and the data centre's ingest,
  either in-process (``run_forever`` in a thread) or as a real ``datacenter ingest --watch``
  subprocess, into a migrated store (SQLite file, or PostgreSQL through ``pg_url``).
- ``expected_calls`` derives, from the simulator's calls alone, the record id each call must get
  (agent, source, journal sequence, SHA-256 of the line: ``edge_agent.sources.mivb_smdr.driver``) and
  the facts a correct parse gives (calling, called, start, talk seconds).
- ``assert_exactly_once(store, expected)`` fails unless the calls in the store are exactly the
  expected ones: none lost, none duplicated (no PBX line stored twice, under any id), none
  unexpected, and every stored call's facts equal the simulator's.
- Every wait is bounded (``Site.wait_until``): on timeout it fails with what it waited for and
  the tail of the agent's log (and of the ingest worker's, when it runs as a process).

On disk, under the test's ``tmp_path``: ``sshd/`` (the fixture: ``landing/demo/`` is the tenant's
landing folder), ``agent/agent.toml``, ``agent/state/``, ``agent/agent.log``, ``dc/datacenter.toml``,
``dc/callcollect.db`` (SQLite store) and ``dc/ingest.log``.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from datacenter.accounts.agents import enroll_agent
from datacenter.accounts.tenants import create_tenant, get_tenant
from datacenter.health.facts import site_health
from datacenter.health.missing_batches import describe, missing_batches
from datacenter.health.model import Finding, State, policy_from_settings
from datacenter.ingest.keys import ensure_keys
from datacenter.ingest.worker import run_forever
from datacenter.settings import LANDING_FOLDERS, Settings, load_settings
from datacenter.store.engine import open_store, upgrade, write_transaction
from datacenter.store.tables.core import calls as calls_table
from datacenter.store.tables.core import landed_files
from edge_agent import config as agent_config
from edge_agent.delivery.enrollment import enroll, identity_paths
from edge_agent.journal import Journal
from edge_agent.simulators.mivb_smdr import SimCall, SmdrSimulatorServer, generate_calls
from shared.icdr import make_line_record_id
from shared.keys import load_certificates
from tests.fixtures.sshd import SshdServer

AGENT_ID = "site-agent-1"
TENANT = "demo"  # the sshd fixture's landing folder is landing/demo/
SOURCE_ID = "pbx-main"
SITE_TIMEZONE = "Europe/London"
BIN = Path(sys.executable).parent  # the venv's console scripts: edge-agent, datacenter
LOG_TAIL_LINES = 40
POLL_SECONDS = 0.1
STOP_TIMEOUT_SECONDS = 20.0
INGEST_POLL_SECONDS = 0.2
CLAIM_TIMEOUT_SECONDS = 60  # the smallest allowed: a dead worker's claim is taken over after it
SETTLE_SECONDS = 1.5  # a drained agent and an unchanged store for this long: all delivered
CALL_GAP_SECONDS = 30.0  # mean time between simulated calls


# --- what the simulator produced, what the store holds ------------------------------------------


@dataclass(frozen=True, slots=True)
class ExpectedCall:
    """One PBX record and what the data centre must hold for it."""

    record_id: str
    line: str  # the SMDR line as the PBX sent it (the call's identity on the wire)
    calling: str
    called: str
    start: datetime  # UTC, from the PBX record, never from the agent's clock
    talk_seconds: int


@dataclass(frozen=True, slots=True)
class StoredCall:
    record_id: str
    raw: str
    calling: str
    called: str
    start: datetime
    talk_seconds: int

    def facts(self) -> tuple[str, str, datetime, int]:
        return (self.calling, self.called, self.start, self.talk_seconds)


@dataclass(frozen=True, slots=True)
class ExactlyOnce:
    """A passed ``assert_exactly_once``: how many calls the store holds (none lost or twice)."""

    calls: int


def line_record_id(
    line: str, seq: int, *, agent_id: str = AGENT_ID, source_id: str = SOURCE_ID
) -> str:
    """The id the MiVB SMDR driver gives the line journalled as unit ``seq``: record-id scheme 2,
    as a site's agent starts with a new journal (``line_ids_from`` 1)."""
    return make_line_record_id(agent_id, source_id, seq, line.encode("latin-1"))


def expected_call(call: SimCall, seq: int) -> ExpectedCall:
    return ExpectedCall(
        record_id=line_record_id(call.line, seq),
        line=call.line,
        calling=call.calling,
        called=call.called,
        start=call.start,
        talk_seconds=call.talk_seconds,
    )


def expected_calls(calls: Sequence[SimCall]) -> list[ExpectedCall]:
    """Every call the simulator streams, received in order: line N is journal unit N."""
    return [expected_call(call, seq) for seq, call in enumerate(calls, start=1)]


def stored_calls(store: sa.Engine, *, tenant: str = TENANT) -> list[StoredCall]:
    c = calls_table.c
    with store.connect() as conn:
        found = get_tenant(conn, tenant)
        if found is None:
            return []
        rows = conn.execute(
            sa.select(c.record_id, c.raw, c.calling, c.called, c.start_utc, c.talk_seconds)
            .where(c.tenant_id == found.tenant_id)
        ).all()  # fmt: skip
    return [StoredCall(r.record_id, r.raw, r.calling, r.called, r.start_utc, r.talk_seconds)
            for r in rows]  # fmt: skip


def stored_count(store: sa.Engine, *, tenant: str = TENANT) -> int:
    with store.connect() as conn:
        found = get_tenant(conn, tenant)
        if found is None:
            return 0
        query = sa.select(sa.func.count()).where(calls_table.c.tenant_id == found.tenant_id)
        return int(conn.execute(query).scalar_one())


def assert_exactly_once(
    store: sa.Engine, expected: Sequence[ExpectedCall], *, tenant: str = TENANT
) -> ExactlyOnce:
    """The store holds exactly ``expected``: same ids, same facts, no line twice."""
    stored = {call.record_id: call for call in stored_calls(store, tenant=tenant)}
    wanted = {call.record_id: call for call in expected}
    assert len(wanted) == len(expected), "expected calls repeat a record id: a harness bug"
    lost = sorted(set(wanted) - set(stored), key=lambda rid: wanted[rid].start)
    unexpected = sorted(set(stored) - set(wanted))
    by_line = Counter(call.raw for call in stored.values())
    duplicated = sorted(line for line, n in by_line.items() if n > 1)
    wrong = [
        (rid, wanted[rid], stored[rid]) for rid in sorted(set(wanted) & set(stored))
        if stored[rid].raw != wanted[rid].line
        or stored[rid].facts() != (wanted[rid].calling, wanted[rid].called,
                                   wanted[rid].start, wanted[rid].talk_seconds)
    ]  # fmt: skip
    problems: list[str] = []
    if lost:
        problems.append(f"{len(lost)} lost, e.g. " + "; ".join(
            f"{rid} {wanted[rid].line.strip()!r}" for rid in lost[:3]))  # fmt: skip
    if duplicated:
        problems.append(f"{len(duplicated)} PBX lines stored more than once, e.g. "
                        + "; ".join(repr(line.strip()) for line in duplicated[:3]))  # fmt: skip
    if unexpected:
        problems.append(f"{len(unexpected)} stored calls the simulator never produced, e.g. "
                        + "; ".join(f"{rid} {stored[rid].raw.strip()!r}" for rid in unexpected[:3]))  # fmt: skip
    if wrong:
        problems.append(f"{len(wrong)} calls stored with other facts, e.g. " + "; ".join(
            f"{rid}: expected {(e.calling, e.called, e.start.isoformat(), e.talk_seconds)}, "
            f"stored {(s.calling, s.called, s.start.isoformat(), s.talk_seconds)}"
            for rid, e, s in wrong[:3]))  # fmt: skip
    assert not problems, (
        f"store does not hold the {len(wanted)} expected calls exactly once "
        f"({len(stored)} stored): " + " | ".join(problems)
    )
    return ExactlyOnce(calls=len(stored))


# --- configuration files -------------------------------------------------------------------------


def toml_text(document: Mapping[str, Any]) -> str:
    """TOML for the flat shapes our configs use: top-level scalars, tables, arrays of tables."""
    lines = [f"{key} = {_toml_value(value)}" for key, value in document.items()
             if not isinstance(value, dict | list)]  # fmt: skip
    for name, value in document.items():
        if not isinstance(value, dict | list):
            continue
        tables = value if isinstance(value, list) else [value]
        header = f"[[{name}]]" if isinstance(value, list) else f"[{name}]"
        for table in tables:
            lines.append(header)
            lines.extend(f"{key} = {_toml_value(item)}" for key, item in table.items())
            lines.append("")
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string for the ASCII values used here
    raise TypeError(f"no TOML form for {value!r}")


@dataclass(frozen=True, slots=True)
class SiteOptions:
    """The knobs a fault test turns; defaults keep a test to seconds."""

    calls: int = 240
    rate_per_second: float = 80.0
    seed: int = 7
    batch_max_records: int = 20
    quota_mb: int = 16
    # What must stay free on the state's file system; production keeps 256 MB / 5 %, the tests
    # run anywhere (a nearly full CI disk must not pause them) unless they test exactly that.
    min_free_mb: int = 0
    min_free_percent: float = 0.0
    interval_seconds: int = 1
    backoff_min_seconds: float = 0.2
    backoff_max_seconds: float = 1.0
    connect_timeout_seconds: float = 3.0
    transfer_timeout_seconds: float = 3.0
    proxy: str = ""
    max_kbps: int = 0
    store_url: str = ""  # empty: a SQLite file under dc/
    # Another source than the SMDR simulator: its kind and options (``id`` is ``SOURCE_ID``).
    # The simulator then has nobody to stream to; give ``calls=0``.
    source: Mapping[str, Any] | None = None


# --- processes -----------------------------------------------------------------------------------


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    if not path.exists():
        return f"({path.name}: no log yet)"
    # paramiko logs every SFTP session at INFO: an agent cycling each second fills the tail
    # with them and hides what the agent itself said (a disk-full failure showed nothing else)
    own = [
        line for line in path.read_text(errors="replace").splitlines() if " paramiko." not in line
    ]
    text = own[-lines:]
    return f"--- last {len(text)} lines of {path} (paramiko's omitted) ---\n" + "\n".join(text)


@dataclass
class ManagedProcess:
    """A command run in the background with its output appended to a log file."""

    argv: list[str]
    log: Path
    env: Mapping[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        assert not self.running, f"{self.argv[0]} is already running"
        self.starts += 1
        with self.log.open("ab") as out:
            out.write(f"=== start {self.starts} at {datetime.now(UTC).isoformat()} ===\n".encode())
            out.flush()
            self.process = subprocess.Popen(
                self.argv, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **self.env}
            )

    def kill9(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed or closed."""
        assert self.process is not None and self.running, "not running"
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(STOP_TIMEOUT_SECONDS)
        self._mark(f"killed -9 (exit {self.process.returncode})")
        self.process = None

    def stop(self) -> int | None:
        """SIGTERM and wait (bounded); SIGKILL if it does not stop. Returns the exit code."""
        if self.process is None:
            return None
        process, self.process = self.process, None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(STOP_TIMEOUT_SECONDS)
        self._mark(f"stopped (exit {process.returncode})")
        return process.returncode

    def signal(self, number: signal.Signals) -> None:
        assert self.process is not None and self.running, "not running"
        self.process.send_signal(number)

    def _mark(self, what: str) -> None:
        with self.log.open("ab") as out:
            out.write(f"=== {what} at {datetime.now(UTC).isoformat()} ===\n".encode())


class IngestThread:
    """The data centre's ingest worker in-process: ``run_forever`` in a thread."""

    def __init__(self, store: sa.Engine, settings: Settings) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=run_forever, args=(store, settings), kwargs={"stop_event": self._stop},
            name="ingest", daemon=True,
        )  # fmt: skip

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(STOP_TIMEOUT_SECONDS)
        assert not self._thread.is_alive(), "the ingest thread did not stop"


# --- the site ------------------------------------------------------------------------------------


class Site:
    """PBX simulator, agent subprocess, sshd landing area, ingest and store (module docstring)."""

    def __init__(self, root: Path, sshd: SshdServer, options: SiteOptions) -> None:
        self.root = root
        self.sshd = sshd
        self.options = options
        self.landing = sshd.landing  # <landing root>/demo
        # calls that all ended before the test: the parser dates SMDR lines (no year) in the past
        span = timedelta(seconds=options.calls * CALL_GAP_SECONDS * 2, days=1)
        start = (datetime.now(UTC) - span).replace(microsecond=0)
        self.calls = generate_calls(count=options.calls, seed=options.seed, start=start,
                                    tz=SITE_TIMEZONE, mean_gap_seconds=CALL_GAP_SECONDS)  # fmt: skip
        self.simulator = SmdrSimulatorServer(self.calls, rate_per_second=options.rate_per_second)
        (root / "agent").mkdir(parents=True, exist_ok=True)
        (root / "dc").mkdir(parents=True, exist_ok=True)
        self.state_dir = root / "agent" / "state"
        self.agent_config = root / "agent" / "agent.toml"
        self.agent_log = root / "agent" / "agent.log"
        self.dc_config = root / "dc" / "datacenter.toml"
        self.ingest_log = root / "dc" / "ingest.log"
        self.store_url = options.store_url or f"sqlite:///{root / 'dc' / 'callcollect.db'}"
        self.store: sa.Engine | None = None
        self.dc_settings: Settings | None = None
        self.bundle = root / "dc" / "keys" / "datacentre-certificates.pem"  # ensure_keys writes it
        self.agent = ManagedProcess([str(BIN / "edge-agent"), "run", "-c", str(self.agent_config)],
                                    self.agent_log)  # fmt: skip
        self.ingest_process = ManagedProcess(
            [str(BIN / "datacenter"), "ingest", "--watch", "--config", str(self.dc_config)],
            self.ingest_log,
        )
        self._ingest_thread: IngestThread | None = None

    # --- set-up and tear-down -----------------------------------------------------------------

    def open(self) -> Site:
        """Keys and configs for both sides, the migrated store, the tenant and the enrolled agent.

        Delivery is as in production: batches signed by the agent's key (``edge-agent enroll``)
        and encrypted to the data centre's (``datacenter keys init``), receipts signed back.
        """
        # The PBX comes first: it listens (its port is in the agent's config) and, like a real
        # one, produces calls from now on, buffering them until a collector connects.
        self.simulator.start()
        for folder in LANDING_FOLDERS:
            (self.landing / folder).mkdir(exist_ok=True)
        self.dc_config.write_text(toml_text({
            "data_dir": self.root / "dc",
            "store": {"url": self.store_url},
            "landing": {"root": self.landing.parent},
            "ingest": {"poll_seconds": INGEST_POLL_SECONDS,
                       "claim_timeout_seconds": CLAIM_TIMEOUT_SECONDS},
        }))  # fmt: skip
        self.dc_settings = load_settings(self.dc_config, env={})
        self.bundle = ensure_keys(self.dc_settings.keys).bundle
        self.write_agent_config()
        _, certificate = identity_paths(self.state_dir)
        enroll(agent_config.load(self.agent_config))
        self.store = open_store(self.store_url)
        upgrade(self.store)
        with write_transaction(self.store) as conn:
            create_tenant(conn, TENANT, "Demo Ltd", SITE_TIMEZONE)
            enroll_agent(conn, TENANT, AGENT_ID,
                                  certificate=load_certificates(certificate)[0])  # fmt: skip
        return self

    def start(self, *, ingest_process: bool = False) -> None:
        """Ingest, then the agent (the PBX has been producing calls since ``open``)."""
        self.start_ingest(process=ingest_process)
        self.agent.start()

    def write_agent_config(self) -> None:
        o, sshd = self.options, self.sshd
        uplink: dict[str, Any] = {
            "host": "127.0.0.1", "port": sshd.port, "username": sshd.username,
            "private_key": sshd.client_key, "known_hosts": sshd.known_hosts,
            "interval_seconds": o.interval_seconds,
            "connect_timeout_seconds": o.connect_timeout_seconds,
            "transfer_timeout_seconds": o.transfer_timeout_seconds,
            "backoff_min_seconds": o.backoff_min_seconds,
            "backoff_max_seconds": o.backoff_max_seconds,
            "proxy": o.proxy, "max_kbps": o.max_kbps,
        }  # fmt: skip
        self.agent_config.write_text(toml_text({
            "agent": {"id": AGENT_ID, "tenant": TENANT, "timezone": SITE_TIMEZONE,
                      "state_dir": self.state_dir},
            "spool": {"quota_mb": o.quota_mb, "batch_max_records": o.batch_max_records,
                      "batch_max_age_seconds": 1, "min_free_mb": o.min_free_mb,
                      "min_free_percent": o.min_free_percent},
            "uplink": uplink,
            "delivery": {"protection": "cms", "datacentre_certificates": self.bundle},
            "sources": [{"id": SOURCE_ID, **o.source} if o.source is not None else
                        {"id": SOURCE_ID, "kind": "mivb-smdr", "host": "127.0.0.1",
                         "port": self.simulator.port, "layout": "standard",
                         "reconnect_min_seconds": 0.1, "reconnect_max_seconds": 0.5}],
        }))  # fmt: skip

    def close(self) -> None:
        """Stop everything this site started (each step even if an earlier one failed)."""
        try:
            self.agent.stop()
        finally:
            try:
                self.stop_ingest()
            finally:
                self.simulator.stop()
                if self.store is not None:
                    self.store.dispose()

    # --- the parts ----------------------------------------------------------------------------

    @property
    def engine(self) -> sa.Engine:
        assert self.store is not None, "Site.open() first"
        return self.store

    def start_ingest(self, *, process: bool = False) -> None:
        """Run ingest: in this process (a thread) or as ``datacenter ingest --watch``."""
        if process:
            self.ingest_process.start()
            return
        assert self.dc_settings is not None, "Site.open() first"
        self._ingest_thread = IngestThread(self.engine, self.dc_settings)
        self._ingest_thread.start()

    def stop_ingest(self) -> None:
        self.ingest_process.stop()
        if self._ingest_thread is not None:
            self._ingest_thread.stop()
            self._ingest_thread = None

    def expected(self) -> list[ExpectedCall]:
        return expected_calls(self.calls)

    # --- waiting ------------------------------------------------------------------------------

    def wait_until(self, condition: Callable[[], bool], *, timeout: float, what: str) -> float:
        """Poll ``condition`` until true; the seconds it took. Fails with the logs' tails."""
        started = time.monotonic()
        deadline = started + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(
                    self.diagnosis(f"timed out after {timeout:g} s waiting for {what}")
                )
            time.sleep(POLL_SECONDS)
        return time.monotonic() - started

    def diagnosis(self, headline: str) -> str:
        parts = [headline, f"simulator sent {self.simulator.sent}/{self.simulator.total} lines, "
                 f"store holds {stored_count(self.engine)} calls", log_tail(self.agent_log)]  # fmt: skip
        if self.ingest_process.starts:
            parts.append(log_tail(self.ingest_log))
        return "\n".join(parts)

    def wait_stored(self, count: int, *, timeout: float) -> float:
        return self.wait_until(lambda: stored_count(self.engine) >= count, timeout=timeout,
                               what=f"{count} calls in the store")  # fmt: skip

    def wait_log(self, text: str, *, timeout: float, log: Path | None = None) -> float:
        path = log or self.agent_log
        return self.wait_until(lambda: text in path.read_text(errors="replace"),
                               timeout=timeout, what=f"{text!r} in {path.name}")  # fmt: skip

    # --- looking at the agent and the landing area ---------------------------------------------

    def spool_rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows from the agent's spool, read-only (safe while the agent runs); [] before it exists."""
        path = self.state_dir / "spool.db"
        if not path.exists():
            return []
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):  # the agent is creating the spool right now
                return []
            raise
        finally:
            conn.close()

    def spool_state(self, key: str, *, source: str = "_agent") -> str | None:
        rows = self.spool_rows("SELECT value FROM state WHERE source_id = ? AND key = ?",
                               (source, key))  # fmt: skip
        return str(rows[0][0]) if rows else None

    def batch_statuses(self) -> dict[str, int]:
        rows = self.spool_rows("SELECT status, COUNT(*) FROM batches GROUP BY status")
        return {str(status): int(n) for status, n in rows}

    def landed(self, folder: str, pattern: str = "*.ccb") -> list[Path]:
        return sorted((self.landing / folder).rglob(pattern))

    # --- the data centre's view -----------------------------------------------------------------

    def findings(self) -> list[Finding]:
        """Polling health's findings for this site now (``datacenter.health.facts.site_health``)."""
        assert self.dc_settings is not None, "Site.open() first"
        policy = policy_from_settings(self.dc_settings.health)
        with self.engine.connect() as conn:
            sites = [s for s in site_health(conn, policy=policy) if s.agent_id == AGENT_ID]
        return list(sites[0].findings) if sites else []

    def finding(self, state: State) -> Finding | None:
        return next((f for f in self.findings() if f.state is state), None)

    def landed_file_rows(self) -> list[sa.Row[Any]]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(landed_files).order_by(landed_files.c.file_name)))

    def batch_sequences(self) -> list[int]:
        """Batch numbers the data centre has stored (stored or duplicate), ascending."""
        return sorted(int(row.sequence) for row in self.landed_file_rows()
                      if row.status in ("stored", "duplicate"))  # fmt: skip

    def agent_backlog(self) -> tuple[int, int]:
        """(spooled rows not in a batch, batches not yet acknowledged) in the agent's spool."""
        unbatched = self.spool_rows("SELECT COUNT(*) FROM icdrs WHERE batch_seq IS NULL")
        pending = self.spool_rows("SELECT COUNT(*) FROM batches WHERE status != 'acknowledged'")
        return (int(unbatched[0][0]) if unbatched else 0, int(pending[0][0]) if pending else 0)

    def wait_all_uploaded(self, *, timeout: float) -> int:
        """Until every line the PBX has is journalled, batched and uploaded (no receipts yet, as
        no ingest runs); the number of batches. Never assume calls / batch_max_records: an agent
        that read the lines in more than one go seals a partial batch when it ages out."""
        total = self.simulator.total

        def uploaded_all() -> bool:
            cursor = self.spool_rows("SELECT seq FROM cursors WHERE source_id = ?", (SOURCE_ID,))
            unbatched, pending = self.agent_backlog()
            return (bool(cursor) and int(cursor[0][0]) >= total and unbatched == 0
                    and pending > 0 and self.batch_statuses().get("uploaded", 0) == pending)  # fmt: skip

        self.wait_until(
            uploaded_all, timeout=timeout, what=f"the agent to upload all {total} lines"
        )
        return self.batch_statuses()["uploaded"]

    def wait_delivered(self, *, timeout: float) -> float:
        """Until the agent has nothing left and the store stopped growing for ``SETTLE_SECONDS``.

        Every line sent, every spooled row in a batch, every batch acknowledged by a receipt.
        """
        settled: list[tuple[float, int]] = []  # (since, store count) while the backlog is empty

        def drained() -> bool:
            idle = (self.agent.running and self.simulator.sent >= self.simulator.total
                    and self.agent_backlog() == (0, 0))  # fmt: skip
            count = stored_count(self.engine)
            if not idle or not settled or settled[0][1] != count:
                settled[:] = [(time.monotonic(), count)] if idle else []
                return False
            return time.monotonic() - settled[0][0] >= SETTLE_SECONDS

        return self.wait_until(drained, timeout=timeout,
                               what="the agent to deliver everything (all batches acknowledged)")  # fmt: skip

    def journalled(self) -> list[tuple[int, str]]:
        """(journal sequence, line) of every unit the agent journalled; the agent must be stopped."""
        assert not self.agent.running, "read the journal only while the agent is stopped"
        with Journal.open(self.state_dir / "journal" / SOURCE_ID, source_id=SOURCE_ID) as journal:
            return [(unit.seq, unit.data.decode("latin-1")) for unit in journal.read_from(1)]

    def missing_batches(self) -> str:
        """The data centre's missing batch numbers for this agent ("3,6", or "-")."""
        with self.engine.connect() as conn:
            tenant = get_tenant(conn, TENANT)
            assert tenant is not None
            return describe(missing_batches(conn, tenant.tenant_id, AGENT_ID))

    def record_ids_in_batches(self, sequences: Sequence[int]) -> set[str]:
        """The record ids the agent sealed into these batch numbers."""
        marks = ",".join("?" * len(sequences))
        rows = self.spool_rows(f"SELECT record_id FROM icdrs WHERE batch_seq IN ({marks})",
                               tuple(sequences))  # fmt: skip
        return {str(row[0]) for row in rows}

    def agent_command(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``edge-agent ARGS -c CONFIG`` to completion (bounded); its output."""
        return subprocess.run(
            [str(BIN / "edge-agent"), *args, "-c", str(self.agent_config)],
            capture_output=True, text=True, timeout=STOP_TIMEOUT_SECONDS, check=False,
        )  # fmt: skip
