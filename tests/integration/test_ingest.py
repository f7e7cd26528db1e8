"""Ingest on both backends: good files, re-sends, every quarantine reason, racing workers."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from datacenter.ingest.rows import CALL_COLUMNS, call_values
from datacenter.ingest.worker import IngestReport, ingest_once, run_forever
from datacenter.settings import Settings
from datacenter.store.engine import write_transaction
from datacenter.store.scoped import TenantScope
from datacenter.store.tables.core import agents, call_days, calls, landed_files
from shared.envelope import MAGIC
from shared.icdr import Direction
from tests.factories import gen_outgoing_call
from tests.fixtures.store import gen_agent, gen_batch, gen_tenant, land


@pytest.fixture
def setup(store: sa.Engine, dc_settings: Settings) -> tuple[sa.Engine, Settings]:
    gen_tenant(store, "acme", timezone="Europe/London")
    gen_agent(store, "acme", "edge-1")
    return store, dc_settings


def _count(engine: sa.Engine, table: sa.Table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def _landed(engine: sa.Engine) -> dict[str, sa.Row[tuple[object, ...]]]:
    with engine.connect() as conn:
        return {row.file_name: row for row in conn.execute(sa.select(landed_files))}


def _archived(settings: Settings, slug: str = "acme") -> list[Path]:
    return sorted(p for p in settings.landing.tenant_dir(slug, "archive").rglob("*") if p.is_file())


def test_good_file_is_stored_with_every_field(setup: tuple[sa.Engine, Settings]) -> None:
    engine, settings = setup
    records = [
        gen_outgoing_call(1, flags=("unsupervised",), account_code="4711", extra={"k": "v"}),
        gen_outgoing_call(2, direction=Direction.IN, answered=False, answer=None, talk_seconds=0),
    ]
    name, data = gen_batch(records, sequence=7)
    path = land(settings, "acme", name, data)

    report = ingest_once(engine, settings, worker_id="w1")

    [outcome] = report.outcomes
    assert (outcome.status, outcome.records, outcome.inserted, outcome.duplicates) == (
        "stored", 2, 2, 0,
    )  # fmt: skip
    assert not path.exists()
    today = datetime.now(UTC).strftime("%Y/%m/%d")
    assert outcome.moved_to == settings.landing.tenant_dir("acme", "archive") / today / name
    assert outcome.moved_to.read_bytes() == data
    with engine.connect() as conn:
        tenant_id = conn.execute(sa.select(agents.c.tenant_id)).scalar_one()
        scope = TenantScope(conn, tenant_id)
        first = scope.get_call(records[0].record_id)
        second = scope.get_call(records[1].record_id)
        agent = conn.execute(sa.select(agents)).one()
        landed = conn.execute(sa.select(landed_files)).one()
    assert first is not None and second is not None
    assert first.to_icdr() == records[0]  # the full record survives, extras included
    assert first.call.start_utc == records[0].start
    assert first.call.end_utc == records[0].end
    assert (first.call.extension, first.call.called, first.call.account_code) == (
        records[0].extension, records[0].called, "4711",
    )  # fmt: skip
    assert (first.flags, first.raw, first.landed_file) == (("unsupervised",), "raw line 1", name)
    assert (second.call.direction, second.call.answered, second.call.answer_utc) == (
        "in",
        False,
        None,
    )
    assert (agent.last_sequence, agent.last_seen_at is not None) == (7, True)
    assert (landed.status, landed.records, landed.inserted, landed.sha256) == (
        "stored", 2, 2, hashlib.sha256(data).hexdigest(),
    )  # fmt: skip


def test_rollup_counts_inserted_rows_by_tenant_local_day(setup: tuple[sa.Engine, Settings]) -> None:
    engine, settings = setup
    # 23:30 UTC on 28 June is 00:30 on 29 June in London (BST).
    late = datetime(2026, 6, 28, 23, 30, tzinfo=UTC)
    records = [
        gen_outgoing_call(1, start=late, talk_seconds=100),
        gen_outgoing_call(2, start=late - timedelta(hours=2), talk_seconds=40),
        gen_outgoing_call(3, start=late, answered=False, answer=None, talk_seconds=0),
    ]
    land(settings, "acme", *gen_batch(records[:2], sequence=1))
    ingest_once(engine, settings)
    land(settings, "acme", *gen_batch(records, sequence=2))  # 2 already stored, 1 new
    report = ingest_once(engine, settings)
    assert (report.inserted, report.duplicates) == (1, 2)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                call_days.c.day, call_days.c.calls, call_days.c.answered, call_days.c.talk_seconds
            ).order_by(call_days.c.day)
        ).all()
    assert [tuple(r) for r in rows] == [
        (date(2026, 6, 28), 1, 1, 40),
        (date(2026, 6, 29), 2, 1, 100),
    ]


def test_resent_identical_file_changes_nothing(setup: tuple[sa.Engine, Settings]) -> None:
    engine, settings = setup
    name, data = gen_batch([gen_outgoing_call(n) for n in range(5)], sequence=1)
    land(settings, "acme", name, data)
    ingest_once(engine, settings)
    before = (_count(engine, calls), _landed(engine)[name]._asdict())

    land(settings, "acme", name, data)
    report = ingest_once(engine, settings)

    assert [o.status for o in report.outcomes] == ["resent"]
    assert (_count(engine, calls), _landed(engine)[name]._asdict()) == before
    assert [p.name for p in _archived(settings)] == [name]  # same bytes: one copy kept
    assert not list(settings.landing.tenant_dir("acme", "incoming").iterdir())


def test_same_records_under_a_new_sequence_are_counted_as_duplicates(
    setup: tuple[sa.Engine, Settings],
) -> None:
    engine, settings = setup
    records = [gen_outgoing_call(n) for n in range(4)]
    land(settings, "acme", *gen_batch(records, sequence=1))
    ingest_once(engine, settings)
    land(settings, "acme", *gen_batch(records, sequence=2))
    report = ingest_once(engine, settings)
    [outcome] = report.outcomes
    assert (outcome.status, outcome.inserted, outcome.duplicates) == ("duplicate", 0, 4)
    assert _count(engine, calls) == 4
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.sum(call_days.c.calls))).scalar_one() == 4


def test_crash_after_commit_before_move_is_harmless(
    setup: tuple[sa.Engine, Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, settings = setup
    name, data = gen_batch([gen_outgoing_call(n) for n in range(3)])
    land(settings, "acme", name, data)
    monkeypatch.setattr("datacenter.ingest.worker.archive", _crash)
    with pytest.raises(KeyboardInterrupt):
        ingest_once(engine, settings)
    monkeypatch.undo()
    assert _landed(engine)[name].status == "stored"  # committed; the file is still in incoming

    report = ingest_once(engine, settings)

    assert [o.status for o in report.outcomes] == ["resent"]
    assert _count(engine, calls) == 3
    assert [p.name for p in _archived(settings)] == [name]


def _crash(*_args: object, **_kwargs: object) -> None:
    raise KeyboardInterrupt


def _truncated(data: bytes) -> bytes:
    return data[: len(data) - 10]


def _bit_flipped(data: bytes) -> bytes:
    flipped = bytearray(data)
    flipped[-20] ^= 0x01
    return bytes(flipped)


def _bad_payload(_data: bytes) -> bytes:
    """Framing and digest right, payload not gzip: only decompression finds it."""
    payload = b"not gzip at all"
    _name, good = gen_batch([gen_outgoing_call(1)])
    head = good[len(MAGIC) : good.index(b"\n", len(MAGIC))].decode()
    manifest = json.loads(head)
    manifest.update(payload_bytes=len(payload), payload_sha256=hashlib.sha256(payload).hexdigest())
    return MAGIC + json.dumps(manifest, sort_keys=True).encode() + b"\n" + payload


QUARANTINE_CASES = [
    ("truncated", _truncated, "acme", "edge-1", "truncated"),
    ("not a batch", lambda _d: b"hello, I am a spreadsheet\n", "acme", "edge-1", "not a callcollect batch"),
    ("bit flipped", _bit_flipped, "acme", "edge-1", "SHA-256 does not match"),
    ("bad payload", _bad_payload, "acme", "edge-1", "does not decompress"),
    ("wrong tenant", lambda d: d, "globex", "edge-1", "names tenant 'globex'"),
    ("unknown agent", lambda d: d, "acme", "edge-9",
     "agent edge-9 is not enrolled for tenant acme: run `datacenter agent add --tenant acme edge-9`"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("damage", "manifest_tenant", "agent_id", "reason"),
    [case[1:] for case in QUARANTINE_CASES],
    ids=[case[0] for case in QUARANTINE_CASES],
)
def test_bad_files_are_quarantined_with_reason(
    setup: tuple[sa.Engine, Settings],
    damage: object,
    manifest_tenant: str,
    agent_id: str,
    reason: str,
) -> None:
    engine, settings = setup
    records = [gen_outgoing_call(n, agent_id=agent_id) for n in range(3)]
    name, data = gen_batch(records, tenant=manifest_tenant, agent_id=agent_id)
    bad = damage(data)  # type: ignore[operator]
    land(settings, "acme", name, bad)

    report = ingest_once(engine, settings)

    [outcome] = report.outcomes
    assert outcome.status == "quarantined"
    assert reason in outcome.reason
    quarantine = settings.landing.tenant_dir("acme", "quarantine")
    assert (quarantine / name).read_bytes() == bad
    assert reason in (quarantine / f"{name}.reason").read_text()
    row = _landed(engine)[name]
    assert (row.status, reason in row.reason) == ("quarantined", True)
    assert (_count(engine, calls), _count(engine, call_days)) == (0, 0)


def test_renamed_file_and_foreign_records_are_quarantined(
    setup: tuple[sa.Engine, Settings],
) -> None:
    engine, settings = setup
    _name, data = gen_batch([gen_outgoing_call(1)], sequence=5)
    land(settings, "acme", "edge-1-0000000006.ccb", data)
    _name, mixed = gen_batch(
        [gen_outgoing_call(2), gen_outgoing_call(3, agent_id="edge-2")], sequence=8
    )
    land(settings, "acme", "edge-1-0000000008.ccb", mixed)
    report = ingest_once(engine, settings)
    reasons = sorted(o.reason for o in report.outcomes)
    assert (
        "file name says agent edge-1 sequence 6, manifest says agent edge-1 sequence 5"
        in reasons[0]
    )
    assert "records from agent(s) edge-2" in reasons[1]
    assert _count(engine, calls) == 0


def test_quarantined_file_moved_back_after_enrolment_is_ingested(
    setup: tuple[sa.Engine, Settings],
) -> None:
    engine, settings = setup
    name, data = gen_batch([gen_outgoing_call(1, agent_id="edge-2")], agent_id="edge-2")
    land(settings, "acme", name, data)
    assert ingest_once(engine, settings).outcomes[0].status == "quarantined"
    gen_agent(engine, "acme", "edge-2")
    quarantined = settings.landing.tenant_dir("acme", "quarantine") / name
    quarantined.rename(settings.landing.tenant_dir("acme", "incoming") / name)

    report = ingest_once(engine, settings)

    assert [(o.status, o.inserted) for o in report.outcomes] == [("stored", 1)]
    assert (_landed(engine)[name].status, _landed(engine)[name].reason) == ("stored", None)


def test_different_file_under_a_stored_name_is_kept_in_quarantine(
    setup: tuple[sa.Engine, Settings],
) -> None:
    engine, settings = setup
    name, first = gen_batch([gen_outgoing_call(1)], sequence=1)
    _same_name, second = gen_batch([gen_outgoing_call(2)], sequence=1)
    land(settings, "acme", name, first)
    ingest_once(engine, settings)
    land(settings, "acme", name, second)

    report = ingest_once(engine, settings)

    [outcome] = report.outcomes
    assert outcome.status == "quarantined" and "already stored" in outcome.reason
    sha12 = hashlib.sha256(second).hexdigest()[:12]
    assert outcome.moved_to is not None and outcome.moved_to.name == f"{name}~{sha12}"
    assert outcome.moved_to.read_bytes() == second
    assert _landed(engine)[f"{name}~{sha12}"].status == "quarantined"
    assert _count(engine, calls) == 1


def test_uploads_in_progress_stray_files_and_unknown_folders_are_left_alone(
    setup: tuple[sa.Engine, Settings],
) -> None:
    engine, settings = setup
    name, data = gen_batch([gen_outgoing_call(1)])
    part = land(settings, "acme", name + ".part", data)
    stray = land(settings, "acme", "notes.txt", b"hello")
    orphan = land(settings, "nobody", name, data)

    report = ingest_once(engine, settings)

    assert report.outcomes == ()
    assert report.unknown_folders == ("nobody",)
    assert part.exists() and stray.exists() and orphan.exists()
    assert _count(engine, landed_files) == 0


def test_live_claim_is_skipped_and_stale_claim_taken_over(
    setup: tuple[sa.Engine, Settings],
) -> None:
    engine, settings = setup
    name, data = gen_batch([gen_outgoing_call(1)])
    land(settings, "acme", name, data)
    with write_transaction(engine) as conn:
        tenant_id = conn.execute(sa.select(agents.c.tenant_id)).scalar_one()
        conn.execute(
            landed_files.insert().values(
                tenant_id=tenant_id, file_name=name, agent_id="edge-1", sequence=1,
                sha256="0" * 64, size=1, status="claimed", claimed_by="dead-worker",
                claimed_at=datetime.now(UTC) - timedelta(seconds=30),
            )
        )  # fmt: skip
    assert ingest_once(engine, settings).outcomes == ()  # 30 s old: still live

    impatient = replace(
        settings, ingest=replace(settings.ingest, poll_seconds=1, claim_timeout_seconds=10)
    )
    report = ingest_once(engine, impatient, worker_id="w2")

    assert [o.status for o in report.outcomes] == ["stored"]
    row = _landed(engine)[name]
    assert (row.claimed_by, row.status, row.sha256) == (
        "w2",
        "stored",
        hashlib.sha256(data).hexdigest(),
    )


def test_racing_workers_take_each_file_once(setup: tuple[sa.Engine, Settings]) -> None:
    engine, settings = setup
    files = 12
    for seq in range(files):
        land(
            settings,
            "acme",
            *gen_batch([gen_outgoing_call(seq * 10 + i) for i in range(10)], sequence=seq),
        )
    reports: list[IngestReport] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def worker(n: int) -> None:
        try:
            barrier.wait(timeout=10)
            reports.append(ingest_once(engine, settings, worker_id=f"w{n}"))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    stored = sorted(o.file_name for r in reports for o in r.outcomes if o.status == "stored")
    assert len(stored) == files and len(set(stored)) == files
    assert sum(r.inserted for r in reports) == files * 10
    assert sum(r.duplicates for r in reports) == 0
    assert _count(engine, calls) == files * 10
    assert {row.status for row in _landed(engine).values()} == {"stored"}
    assert len(_archived(settings)) == files
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.sum(call_days.c.calls))).scalar_one() == files * 10


def test_call_values_follow_the_table_column_order() -> None:
    """call_values is positional; its order must be the table's, column for column."""
    texts = (
        "source_id", "calling", "called", "dialled_digits", "extension", "trunk", "route",
        "third_party", "account_code", "ani", "dnis", "completion_source", "call_id",
        "parent_call_id", "raw", "parser_version",
    )  # fmt: skip
    numbers = ("utc_offset_minutes", "ring_seconds", "talk_seconds", "hold_seconds")
    rec = gen_outgoing_call(
        3, answer=None, flags=("a",), answered=True, transferred=False, conference=True,
        **{name: name for name in texts},
        **{name: i + 11 for i, name in enumerate(numbers)},
    )  # fmt: skip
    values = dict(zip(CALL_COLUMNS, call_values(9, rec, "f.ccb", "now"), strict=True))
    assert {name: values[name] for name in texts} == {name: name for name in texts}
    assert [values[name] for name in numbers] == [11, 12, 13, 14]
    assert [values[n] for n in ("answered", "transferred", "conference")] == [True, False, True]
    expected = {
        "tenant_id": 9, "record_id": rec.record_id, "start_utc": rec.start, "answer_utc": None,
        "end_utc": rec.end, "direction": "out", "completion": "answered", "flags": ["a"],
        "landed_file": "f.ccb", "ingested_at": "now", "agent_id": "edge-1",
        "source_kind": "mitel_smdr",
    }  # fmt: skip
    assert {key: values[key] for key in expected} == expected


def test_a_record_the_database_refuses_quarantines_the_file(
    setup: tuple[sa.Engine, Settings], backend: str
) -> None:
    """PostgreSQL text cannot hold NUL; SQLite can. Either way nothing is lost or half-stored."""
    engine, settings = setup
    land(
        settings,
        "acme",
        *gen_batch([gen_outgoing_call(1), gen_outgoing_call(2, raw="bad\x00byte")]),
    )
    [outcome] = ingest_once(engine, settings).outcomes
    if backend == "postgres":
        assert outcome.status == "quarantined"
        assert "the store refused a record" in outcome.reason
        assert _count(engine, calls) == 0
    else:
        assert (outcome.status, outcome.inserted) == ("stored", 2)


def test_rating_finds_each_new_call_by_primary_key_on_a_fresh_postgres_store(
    setup: tuple[sa.Engine, Settings], backend: str
) -> None:
    """Rating's per-row foreign-key checks into ``call_keys`` must use ``pk_call_keys``.

    On a never-analysed store PostgreSQL planned them (then into ``calls``) as a scan of a
    ``(tenant_id, ...)`` secondary index, reading every call of the tenant per check (ingest
    went quadratic).
    """
    if backend != "postgres":
        pytest.skip("the plan in question is PostgreSQL's")
    engine, settings = setup
    land(settings, "acme", *gen_batch([gen_outgoing_call(n) for n in range(2000)]))
    assert ingest_once(engine, settings).inserted == 2000
    # The foreign-key check's own query (ri_triggers.c), planned as the check plans it.
    check = sa.text(
        "EXPLAIN (FORMAT JSON) SELECT 1 FROM ONLY call_keys x WHERE tenant_id = :tenant "
        "AND record_id::text = :record FOR KEY SHARE OF x"
    )
    with engine.connect() as conn:
        tenant = conn.execute(sa.select(calls.c.tenant_id).limit(1)).scalar_one()
        [plan] = conn.execute(
            check, {"tenant": tenant, "record": gen_outgoing_call(7).record_id}
        ).scalar_one()
    scan = plan["Plan"]["Plans"][0]
    assert (scan["Node Type"], scan.get("Index Name")) == ("Index Scan", "pk_call_keys")


def test_run_forever_ingests_until_stopped(setup: tuple[sa.Engine, Settings]) -> None:
    engine, settings = setup
    fast = replace(
        settings, ingest=replace(settings.ingest, poll_seconds=0.1, claim_timeout_seconds=600)
    )
    stop = threading.Event()
    worker = threading.Thread(target=run_forever, args=(engine, fast), kwargs={"stop_event": stop})
    worker.start()
    try:
        land(settings, "acme", *gen_batch([gen_outgoing_call(1)], sequence=1))
        deadline = time.monotonic() + 20
        while _count(engine, calls) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        land(settings, "acme", *gen_batch([gen_outgoing_call(2)], sequence=2))
        while _count(engine, calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        worker.join(timeout=10)
    assert not worker.is_alive()
    assert _count(engine, calls) == 2
