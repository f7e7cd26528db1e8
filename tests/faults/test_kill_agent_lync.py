"""kill -9 of the agent in the middle of LcsCDR polls: the data centre loses and repeats nothing.

The PBX is a Lync / Skype for Business Monitoring store: a PostgreSQL LcsCDR stand-in
(``tests/fixtures/lcscdr.py``) holding the simulator's scenario set and a few thousand plain
sessions, read by a real ``edge-agent run`` through psqlODBC with small pages, so that one poll
takes seconds and a kill lands between two pages of it. Each kill waits until the running poll
has journalled something, then a seeded random moment more, and is counted as "during a poll"
only if that poll had not reported its end.

A polled source, unlike a TCP SMDR stream, can lose nothing at all: the rows stay in LcsCDR and
the watermark advances only after a page is journalled and spooled. So the test asserts exactly
that: the calls in the store are the sessions in LcsCDR (record ids from the session key, and
the call facts read from the database itself), none lost, none stored twice. After every kill it
also checks that the watermark the dead agent left in its spool state never passed a session it
had not spooled.
"""

from __future__ import annotations

import json
import math
import random
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from edge_agent.journal import Journal
from edge_agent.pipeline import REPORT_KEY
from edge_agent.sources.lync_cdr.driver import WATERMARK_KEY
from shared.icdr import make_record_id
from tests.faults.site import AGENT_ID, SOURCE_ID, Site, StoredCall, stored_calls
from tests.fixtures.lcscdr import LcsCdrFactory, LcsCdrSite

pytestmark = [pytest.mark.faults, pytest.mark.sshd, pytest.mark.postgres]

SEED = 20260303
KILLS = 12  # kills that land inside a poll
MAX_ATTEMPTS = 30  # a kill that comes after the poll ended does not count; bounded retries
BULK_SESSIONS = 6000
BULK_SPACING_MS = 2000  # 1,800 sessions per one-hour slice, 9 pages of 200
BULK_HOURS_AGO = 5  # the bulk spans 3 h 20 min from here
SCENARIOS_HOURS_AGO = 6  # one session of every kind, a minute apart
QUOTA_MB = 128  # the journal re-reads grow it; no early retention or spool-full pause here
COMPLETE_AFTER_KILL = 4  # then the late end times are written (the scenario "late_end")
PAGE_SIZE = 200
POLL_INTERVAL_SECONDS = 5  # the driver's minimum
JITTER_SECONDS = 0.6  # a kill comes up to this long after the poll journalled its first page
POLL_START_TIMEOUT = 15.0
DELIVERY_TIMEOUT = 40.0


@dataclass(frozen=True, slots=True)
class Session:
    """One session LcsCDR holds, and what the data centre must store for it."""

    key: tuple[datetime, int]  # (SessionIdTime, SessionIdSeq), naive UTC
    record_id: str
    open: bool  # answered, no SessionEndTime yet: the poller holds it back for a later sweep
    calling: str
    called: str
    start: datetime  # UTC
    talk_seconds: int

    def facts(self) -> tuple[str, str, datetime, int]:
        return (self.calling, self.called, self.start, self.talk_seconds)


# The audio sessions with their parties, straight from the tables the Monitoring service writes.
SESSIONS_SQL = """
SELECT s."SessionIdTime", s."SessionIdSeq", s."InviteTime", s."ResponseTime", s."ResponseCode",
       s."SessionEndTime", st."UserUri", u1."UserUri", u2."UserUri", fp."PhoneUri", cp."PhoneUri",
       v."FromGatewayId" IS NOT NULL OR v."FromMediationServerId" IS NOT NULL,
       v."ToGatewayId" IS NOT NULL OR v."ToMediationServerId" IS NOT NULL
FROM dbo."SessionDetails" s
JOIN dbo."VoipDetails" v USING ("SessionIdTime", "SessionIdSeq")
LEFT JOIN dbo."Users" st ON st."UserId" = s."SessionStartedById"
LEFT JOIN dbo."Users" u1 ON u1."UserId" = s."User1Id"
LEFT JOIN dbo."Users" u2 ON u2."UserId" = s."User2Id"
LEFT JOIN dbo."Phones" fp ON fp."PhoneId" = v."FromNumberId"
LEFT JOIN dbo."Phones" cp ON cp."PhoneId" = v."ConnectedNumberId"
WHERE s."MediaTypes" & 16 = 16
"""


def plain(uri: str | None) -> str:
    """``tel:+44...`` -> ``+44...``; ``sip:alice@example.com`` -> ``alice@example.com``."""
    if not uri:
        return ""
    text = uri.split(":", 1)[1] if ":" in uri else uri
    text = text.split(";", 1)[0]
    user, _, _ = text.partition("@")
    return user if ";user=phone" in uri else text


def session_record_id(key: tuple[datetime, int]) -> str:
    """The id formats.md §1 gives a session: agent, source, SessionIdTime (ms), SessionIdSeq."""
    return make_record_id(AGENT_ID, SOURCE_ID, key[0].isoformat(timespec="milliseconds"),
                          str(key[1]))  # fmt: skip


def lcscdr_sessions(lcscdr: LcsCdrSite) -> dict[str, Session]:
    """Every audio session in the stand-in, by record id, with the facts a correct parse gives."""
    with psycopg.connect(lcscdr.conninfo) as conn:
        rows = conn.execute(SESSIONS_SQL).fetchall()
    sessions: dict[str, Session] = {}
    for (time_, seq, invite, response, code, end, starter, user1, user2, from_phone, connected,
         from_pstn, to_pstn) in rows:  # fmt: skip
        other = user2 if user1 == starter else user1
        if to_pstn and not from_pstn:
            calling, called = plain(starter), plain(connected)
        elif from_pstn:  # in, or tandem (forwarded back out)
            calling = plain(from_phone or starter)
            called = plain(connected) if to_pstn else plain(other)
        else:
            calling, called = plain(starter), plain(other)
        answered = code == 200 and response is not None
        talk_ms = max(0, round((end - response).total_seconds() * 1000)) if answered and end else 0
        key = (time_, seq)
        sessions[session_record_id(key)] = Session(
            key=key, record_id=session_record_id(key), open=answered and end is None,
            calling=calling, called=called,
            start=(invite or time_).replace(tzinfo=UTC), talk_seconds=math.ceil(talk_ms / 1000),
        )  # fmt: skip
    return sessions


def utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def session_key_of(call: StoredCall) -> tuple[str, int]:
    row = json.loads(call.raw)
    return (str(row["SessionIdTime"]), int(row["SessionIdSeq"]))


def assert_exactly_lcscdr(site: Site, sessions: dict[str, Session]) -> int:
    """The store holds every LcsCDR session once, under its id, with its facts; nothing else."""
    stored = stored_calls(site.engine)
    by_id = {call.record_id: call for call in stored}
    lost = sorted(set(sessions) - set(by_id), key=lambda rid: sessions[rid].key)
    unexpected = sorted(set(by_id) - set(sessions))
    twice = [key for key, n in Counter(session_key_of(c) for c in stored).items() if n > 1]
    wrong = [
        (rid, sessions[rid].facts(), (c.calling, c.called, utc(c.start), c.talk_seconds))
        for rid, c in by_id.items() if rid in sessions
        and (c.calling, c.called, utc(c.start), c.talk_seconds) != sessions[rid].facts()
    ]  # fmt: skip
    problems = []
    if lost:
        problems.append(f"{len(lost)} lost, e.g. {[sessions[r].key for r in lost[:3]]}")
    if len(stored) != len(by_id) or twice:
        problems.append(f"{len(stored) - len(by_id)} ids and {len(twice)} sessions stored more "
                        f"than once, e.g. {twice[:3]}")  # fmt: skip
    if unexpected:
        problems.append(f"{len(unexpected)} stored calls LcsCDR does not hold, e.g. "
                        f"{[by_id[r].raw[:120] for r in unexpected[:2]]}")  # fmt: skip
    if wrong:
        problems.append(f"{len(wrong)} with other facts, e.g. (id, expected, stored) {wrong[:2]}")
    assert not problems, site.diagnosis(
        f"store does not hold the {len(sessions)} LcsCDR sessions exactly once "
        f"({len(stored)} stored): " + " | ".join(problems)
    )
    return len(stored)


# --- the agent's progress, read from its state directory ----------------------------------------


def journal_bytes(site: Site) -> int:
    folder = site.state_dir / "journal" / SOURCE_ID
    return sum(p.stat().st_size for p in folder.glob("*.seg")) if folder.exists() else 0


def watermark(site: Site) -> tuple[datetime, int] | None:
    text = site.spool_state(WATERMARK_KEY, source=SOURCE_ID)
    if text is None:
        return None
    data = json.loads(text)
    return (datetime.fromisoformat(data["session_id_time"]), int(data["session_id_seq"]))


def assert_watermark_covered(site: Site, sessions: dict[str, Session], kill: int) -> int:
    """Every finished session at or below the dead agent's watermark is stored; how many.

    Stored: in the agent's spool, or already in the data centre's store (retention may have
    purged an acknowledged batch from the spool).

    Open sessions are left out: the poller holds them back on purpose and every sweep (the first
    poll of each start is one) reads them again; the final check proves they arrive finished.
    """
    mark = watermark(site)
    if mark is None:
        return 0
    spooled = {str(row[0]) for row in site.spool_rows("SELECT record_id FROM icdrs")}
    spooled |= {call.record_id for call in stored_calls(site.engine)}
    behind = [s for s in sessions.values() if s.key <= mark and not s.open]
    missing = sorted(s.key for s in behind if s.record_id not in spooled)
    assert not missing, site.diagnosis(
        f"after kill {kill} the watermark {mark} has passed {len(missing)} sessions that are not "
        f"in the spool or the store, e.g. {missing[:3]}: a restart would never read them again"
    )
    return len(behind)


def poll_under_way(site: Site, journal_before: int) -> Callable[[], bool]:
    """True once the poll has journalled a page (or the agent died: the caller says so)."""
    return lambda: journal_bytes(site) > journal_before or not site.agent.running


@dataclass(slots=True)
class KillLog:
    in_poll: int = 0
    after_poll: int = 0
    covered: list[int] | None = None


def kill_during_polls(
    site: Site, rng: random.Random, sessions: dict[str, Session], lcscdr: LcsCdrSite
) -> KillLog:
    """Start the agent, kill -9 it inside a poll, check the watermark; ``KILLS`` times.

    After ``COMPLETE_AFTER_KILL`` kills the Monitoring service writes the open sessions' end.
    """
    kills = KillLog(covered=[])
    assert kills.covered is not None
    for attempt in range(1, MAX_ATTEMPTS + 1):
        if kills.in_poll >= KILLS:
            break
        report_before = site.spool_state(REPORT_KEY, source=SOURCE_ID)
        journal_before = journal_bytes(site)
        site.agent.start()
        site.wait_until(poll_under_way(site, journal_before), timeout=POLL_START_TIMEOUT,
                        what=f"poll {attempt} to journal its first page")  # fmt: skip
        time.sleep(rng.uniform(0.0, JITTER_SECONDS))
        assert site.agent.running, site.diagnosis("the agent died on its own before the kill")
        site.agent.kill9()
        if site.spool_state(REPORT_KEY, source=SOURCE_ID) == report_before:
            kills.in_poll += 1
        else:
            kills.after_poll += 1  # the poll had ended: not counted
        kills.covered.append(assert_watermark_covered(site, sessions, attempt))
        if attempt == COMPLETE_AFTER_KILL:
            assert lcscdr.simulator.complete_pending(), "harness: no open session to complete"
    return kills


def test_kill_9_agent_during_lcscdr_polls(
    make_site: Callable[..., Site], lcscdr_factory: LcsCdrFactory
) -> None:
    began = time.monotonic()
    lcscdr = lcscdr_factory(scenarios=False)
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    # every kind of session first, then the bulk: all ended before the agent's first poll
    lcscdr.expected = lcscdr.simulator.write_scenarios(now - timedelta(hours=SCENARIOS_HOURS_AGO))
    bulk_start = now - timedelta(hours=BULK_HOURS_AGO)
    lcscdr.simulator.write_bulk(BULK_SESSIONS, start=bulk_start, spacing_ms=BULK_SPACING_MS)
    sessions = lcscdr_sessions(lcscdr)
    assert len(sessions) >= BULK_SESSIONS, "the stand-in holds fewer sessions than were written"
    check_scenarios_match(lcscdr, sessions)

    site = make_site(calls=0, batch_max_records=200, quota_mb=QUOTA_MB, source={
        "kind": "lync-cdr", "connection_string": lcscdr.odbc, "include_internal": True,
        "page_size": PAGE_SIZE, "poll_interval_seconds": POLL_INTERVAL_SECONDS,
        "settle_seconds": 0, "slice_hours": 1, "initial_lookback_hours": SCENARIOS_HOURS_AGO + 1,
    })  # fmt: skip
    site.start_ingest()
    kills = kill_during_polls(site, random.Random(SEED), sessions, lcscdr)
    sessions = lcscdr_sessions(lcscdr)  # with the late end times
    assert not any(s.open for s in sessions.values()), "harness: a session is still open"
    assert kills.in_poll >= KILLS, (
        f"only {kills.in_poll} of {kills.in_poll + kills.after_poll} kills landed inside a poll: "
        "the polls are too short for this machine"
    )
    site.agent.start()
    site.wait_until(lambda: watermark(site) == max(s.key for s in sessions.values()),
                    timeout=DELIVERY_TIMEOUT, what="the watermark to reach the last session")  # fmt: skip
    site.wait_until(lambda: len(stored_calls(site.engine)) >= len(sessions),
                    timeout=DELIVERY_TIMEOUT, what=f"{len(sessions)} calls in the store")  # fmt: skip
    site.wait_delivered(timeout=DELIVERY_TIMEOUT)
    site.agent.stop()
    elapsed = time.monotonic() - began
    last_report = site.spool_state(REPORT_KEY, source=SOURCE_ID)
    # The last report is a sweep or, when the agent outlived one poll interval (a slower
    # machine), a plain poll: either shows polls report under the key the kills are told by.
    assert last_report is not None and re.search(r'"message": "(sweep|poll) ', last_report), (
        f"harness: polls report under {REPORT_KEY!r}, or no kill can be told to be inside one: "
        f"{last_report!r}"
    )

    calls = assert_exactly_lcscdr(site, sessions)
    spooled = int(site.spool_rows("SELECT COUNT(*) FROM icdrs")[0][0])
    journalled = journal_units(site)
    print(
        f"\nkill -9 x{kills.in_poll} during LcsCDR polls: {calls} calls, 0 lost, 0 duplicated, "
        f"{elapsed:.1f} s ({kills.after_poll} more kills after a poll ended; {journalled} rows "
        f"journalled for {spooled} spooled: {journalled - spooled} re-read after restarts; "
        f"finished sessions behind the watermark at each kill, all stored: {kills.covered})"
    )


def journal_units(site: Site) -> int:
    """Rows the agent journalled, re-reads included (the agent must be stopped)."""
    with Journal.open(site.state_dir / "journal" / SOURCE_ID, source_id=SOURCE_ID) as journal:
        return sum(1 for _ in journal.read_from(1))


def check_scenarios_match(lcscdr: LcsCdrSite, sessions: dict[str, Session]) -> None:
    """The facts read from the tables agree with the simulator's own account of its scenarios."""
    by_key = {s.key: s for s in sessions.values()}
    for call in lcscdr.expected:
        if call.scenario == "im_only":  # no audio: not a call, not polled
            continue
        found = by_key[(call.session_time, call.session_seq)]
        assert (found.calling, found.called, found.talk_seconds) == (
            call.calling, call.called, math.ceil(call.talk_ms / 1000)
        ), f"harness: {call.scenario} reads as {found} from the tables"  # fmt: skip
