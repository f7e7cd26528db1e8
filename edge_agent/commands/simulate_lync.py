"""`edge-agent simulate lync-cdr`: an LcsCDR stand-in database on PostgreSQL.

Its own module so that the other simulators, and the agent, never import psycopg (the
``simulators`` extra); ``simulate.py`` loads it when the command is used.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click
import psycopg

from edge_agent.simulators import lcscdr as lync_sim
from shared.errors import SourceError


@click.command("lync-cdr")
@click.option("--db", "conninfo", required=True, help="PostgreSQL URL of an empty database.")
@click.option(
    "--variant",
    type=click.Choice([g.value for g in lync_sim.Generation]),
    default=lync_sim.Generation.SFB_2015.value,
    show_default=True,
    help="Schema generation: 2010, 2013 or 2015 (= 2019).",
)
@click.option("--replaces-spelling", is_flag=True, help="Use ReplacesDialogIdTime/Seq.")
@click.option("--bulk", type=int, default=0, help="Also load this many plain PSTN sessions.")
@click.option("--start", type=click.DateTime(), default=None, help="First session (UTC).")
def simulate_lync_cdr(
    conninfo: str, variant: str, replaces_spelling: bool, bulk: int, start: datetime | None
) -> None:
    """Create an LcsCDR stand-in database and fill it with realistic sessions.

    Creates schema dbo (the tables of the chosen Lync / Skype for Business generation) in an
    EMPTY PostgreSQL database, writes one session of every kind the lync-cdr driver handles
    and prints what each should become. Point a lync-cdr source at it with the psqlODBC
    connection string (DRIVER={PostgreSQL Unicode};...;BoolsAsChar=0;).

    Example:

        simulate lync-cdr --db postgresql://postgres@127.0.0.1:5432/LcsCDR --variant 2013
    """
    chosen = lync_sim.Variant(lync_sim.Generation(variant), replaces_spelling=replaces_spelling)
    begin = (start or datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=1)).replace(
        tzinfo=None
    )
    try:
        expected = lync_sim.fill_stand_in(conninfo, chosen, begin=begin, bulk=bulk)
    except psycopg.Error as exc:
        raise SourceError(  # the stand-in is the PBX side: a failure there is a source's
            f"cannot write the LcsCDR stand-in ({exc.__class__.__name__}: {exc}); "
            "pass --db with an empty database the postgres user may write"
        ) from exc
    for call in expected:
        click.echo(
            f"{call.session_time.isoformat(timespec='milliseconds')} #{call.session_seq} "
            f"{call.scenario:<22} {call.direction:<8} {call.calling} -> {call.called} "
            f"{'answered' if call.answered else call.completion}"
            f"{'' if call.billed else ' (not billed)'}"
        )
    click.echo(f"{len(expected)} scenario sessions and {bulk} bulk sessions written")
