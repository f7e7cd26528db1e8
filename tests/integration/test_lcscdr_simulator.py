"""The LcsCDR simulator: its schema, its sessions and its `simulate lync-cdr` command."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest
from click.testing import CliRunner

from edge_agent.cli import main
from edge_agent.commands.simulate_lync import simulate_lync_cdr
from tests.fixtures.lcscdr import LcsCdrSite
from tests.fixtures.ports import free_port
from tests.fixtures.postgres import PgCluster

pytestmark = pytest.mark.postgres


def test_simulate_command_creates_a_populated_stand_in(pg_cluster: PgCluster) -> None:
    dbname = pg_cluster.create_database("sim")
    url = f"postgresql://postgres@127.0.0.1:{pg_cluster.port}/{dbname}"
    result = CliRunner().invoke(
        simulate_lync_cdr, ["--db", url, "--variant", "2013", "--bulk", "50"]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "scenario sessions and 50 bulk sessions written" in lines[-1]
    scenarios = len(lines) - 1
    with psycopg.connect(url) as conn:
        sessions = conn.execute('SELECT count(*) FROM dbo."SessionDetails"').fetchone()
        # Default start an hour ago: every session, bulk ones too, ended before now (UTC).
        latest = conn.execute(
            'SELECT max(coalesce("SessionEndTime", "SessionIdTime")) FROM dbo."SessionDetails"'
        ).fetchone()
        client_type = conn.execute(
            "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'dbo' "
            "AND table_name = 'ClientVersions' AND column_name = 'ClientType'"
        ).fetchone()
    assert sessions == (scenarios + 50,) and client_type == (1,)
    assert latest is not None and latest[0] < datetime.now(UTC).replace(tzinfo=None)
    assert "(not billed)" in result.output  # the RGS agent leg and the retried session


def test_simulate_command_reports_a_bad_database() -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/LcsCDR?connect_timeout=2"
    result = CliRunner().invoke(main, ["simulate", "lync-cdr", "--db", url])
    assert result.exit_code == 5  # SourceError: the stand-in is the PBX side
    assert "Error: cannot write the LcsCDR stand-in" in result.output
    assert "Traceback" not in result.output


def test_late_end_times_are_written_later(lcscdr: LcsCdrSite) -> None:
    query = 'SELECT count(*) FROM dbo."SessionDetails" WHERE "SessionEndTime" IS NULL'
    with psycopg.connect(lcscdr.conninfo) as conn:
        open_before = conn.execute(query).fetchone()
    done = lcscdr.simulator.complete_pending(talk_seconds=30)
    with psycopg.connect(lcscdr.conninfo) as conn:
        open_after = conn.execute(query).fetchone()
        modified = conn.execute(
            'SELECT "LastModifiedTime" > "InviteTime" FROM dbo."SessionDetails" '
            'WHERE "SessionIdTime" = %s AND "SessionIdSeq" = %s',
            done[0],
        ).fetchone()
    late = [c for c in lcscdr.expected if c.end_pending]
    # Exactly the answered session written without an end gets one.
    assert len(done) == len(late) == 1
    assert open_before is not None and open_after == (open_before[0] - 1,)
    assert modified == (True,)
