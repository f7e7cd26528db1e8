"""`edge-agent simulate`: play a PBX on this machine, for tests, demos and rehearsals.

The command line of every simulator lives here (options, messages, Ctrl-C); what each
simulator generates and serves is in ``edge_agent/simulators/``. ``lync-cdr`` is in
``simulate_lync.py``, imported only when used: it needs psycopg (the ``simulators`` extra).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Protocol, TextIO
from zoneinfo import ZoneInfo

import click

from edge_agent.simulators import mcs_ipsmdr as ipsmdr_sim
from edge_agent.simulators import mivb_smdr as mivb_sim
from edge_agent.simulators import mivo250_oai as oai_sim
from edge_agent.simulators import mivo250_smdr as smdr250_sim
from edge_agent.sources.mivb_smdr.layout import LayoutFlags
from shared.errors import SourceError
from shared.lazy_group import LazyGroup

# Imported when used: lync-cdr needs psycopg (the `simulators` extra).
LAZY_SIMULATORS = {"lync-cdr": "edge_agent.commands.simulate_lync:simulate_lync_cdr"}


@click.group(
    "simulate",
    cls=LazyGroup,
    lazy=LAZY_SIMULATORS,
    install_hint="pip install 'callcollect[agent,simulators]'",
)
def simulate_command() -> None:
    """Play a PBX's call-record interface with generated, fictional calls.

    Point a source of the same kind at the simulator to try a configuration end to end before
    the real PBX is reachable, e.g.:

        edge-agent simulate mivb-smdr --port 1752 --rate 2 --count 500

    Simulators listen on 127.0.0.1 unless told otherwise. Every number they generate is from a
    range reserved for fiction.
    """


# --- serving ---------------------------------------------------------------------------------


class Serving(Protocol):
    """A simulator's server as `serve_until_interrupted` drives it."""

    @property
    def port(self) -> int: ...

    def start(self) -> object: ...

    def stop(self) -> None: ...


def serve_until_interrupted(
    server: Serving,
    *,
    host: str,
    port: int,
    banner: Callable[[int], str],
    then: Callable[[], None] | None = None,
) -> None:
    """What a `simulate` command does with its server: listen (a busy port is one clear
    sentence), print ``banner(bound_port)``, run ``then`` (e.g. wait for a finite feed to be
    sent), serve until Ctrl-C, stop."""
    try:
        server.start()
    except OSError as exc:
        raise SourceError(  # the simulated PBX cannot offer its link: a PBX-side failure
            f"cannot listen on {host}:{port}: {exc}; pick another --port"
        ) from exc
    click.echo(banner(server.port))
    try:
        if then is not None:
            then()
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


# --- the simulators ----------------------------------------------------------------------------


@click.command("mivb-smdr")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=int, default=mivb_sim.DEFAULT_PORT, show_default=True, help="Port to listen on."
)
@click.option("--count", type=click.IntRange(0), default=100, show_default=True, help="Calls.")
@click.option(
    "--rate", type=float, default=2.0, show_default=True, help="Lines per second (0: at once)."
)
@click.option(
    "--layout",
    default="standard",
    show_default=True,
    help="SMDR options that move columns: standard, or A, L2, X, ANI, OLI, M joined by '+'.",
)
@click.option(
    "--clock", type=click.Choice(["24h", "12h"]), default="24h", show_default=True, help="Clock."
)
@click.option("--timezone", "tz", default="UTC", show_default=True, help="Site IANA time zone.")
@click.option("--start", help="Wall-clock time of the first call, ISO 8601 (default: now).")
@click.option("--seed", type=int, default=1, show_default=True, help="Random seed.")
@click.option(
    "--drop-after", type=click.IntRange(1), help="Close each connection after this many lines."
)
@click.option(
    "--live",
    is_flag=True,
    help="Send each call's line when the clock reaches the call's end (as a PBX does); "
    "calls that ended before now are sent at once. --rate is then ignored.",
)
@click.option(
    "--mean-gap",
    type=click.FloatRange(1),
    default=mivb_sim.DEFAULT_MEAN_GAP_SECONDS,
    show_default=True,
    help="Mean seconds between call starts.",
)
@click.option(
    "--write",
    "write_to",
    type=click.File("w", encoding="latin-1", lazy=False),  # a bad path is a usage error (2)
    help="Write the lines to this file (- for stdout) instead of serving them.",
)
def simulate_mivb_smdr(
    host: str,
    port: int,
    count: int,
    rate: float,
    layout: str,
    clock: str,
    tz: str,
    start: str | None,
    seed: int,
    drop_after: int | None,
    live: bool,
    mean_gap: float,
    write_to: TextIO | None,
) -> None:
    """Play a MiVoice Business SMDR port (formats.md §2): fixed-width lines over TCP, CR LF.

    The simulator is the server, as the PBX is; point a `mivb-smdr` source at it. Lines are
    buffered while no collector is connected and sent when one connects, as the controller
    does. Example, then Ctrl-C to stop:

        edge-agent simulate mivb-smdr --port 1752 --rate 2 --count 500 --layout L2 \\
            --timezone Europe/London

    Write a capture file instead, to rehearse `edge-agent parse`:

        edge-agent simulate mivb-smdr --count 50 --layout A+L2+X --write capture.txt

    Live, as the demo runs it: calls from 30 minutes ago on, each line sent when its call ends
    on the wall clock (the earlier ones at once):

        edge-agent simulate mivb-smdr --live --start 2026-05-14T08:30 --timezone Europe/London
    """
    try:
        flags = LayoutFlags.parse(layout)
        zone = ZoneInfo(tz)
    except (ValueError, KeyError) as exc:
        raise click.UsageError(
            f"{exc}; use a layout such as standard or A+L2+X and a zone such as Europe/London"
        ) from exc
    try:
        first = datetime.fromisoformat(start) if start else datetime.now(zone)
    except ValueError as exc:
        raise click.BadParameter(
            f"{start!r} is not ISO 8601, e.g. 2026-05-14T09:00", param_hint="--start"
        ) from exc
    calls = mivb_sim.generate_calls(
        count=count, seed=seed, start=first, layout=flags, tz=zone, clock=clock,
        mean_gap_seconds=mean_gap,
    )  # fmt: skip
    if write_to is not None:
        for call in calls:
            write_to.write(call.line + "\r\n")
        return
    server = mivb_sim.SmdrSimulatorServer(
        calls, host=host, port=port, rate_per_second=rate, drop_after_lines=drop_after, live=live
    )

    def all_sent() -> None:
        server.wait_until_sent(timeout=None)
        click.echo(f"all {count} lines sent; the port stays open until Ctrl-C")

    serve_until_interrupted(
        server, host=host, port=port, then=all_sent,
        banner=lambda bound: f"MiVB SMDR simulator on {host}:{bound}: {count} calls, "
        f"layout {flags.name}, "
        f"{'live: each line as its call ends' if live else f'{rate:g} lines/s'}; Ctrl-C stops",
    )  # fmt: skip


@click.command("mcs-ipsmdr")
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to listen on (local mode)."
)
@click.option(
    "--port", type=int, default=ipsmdr_sim.DEFAULT_PORT, show_default=True, help="Local-mode port."
)
@click.option(
    "--push", "push_to", metavar="HOST:PORT", help="Push mode: connect to the agent here instead."
)
@click.option("--calls", type=int, default=20, show_default=True, help="Calls to generate.")
@click.option(
    "--seed", type=int, default=1, show_default=True, help="Random seed (same seed, same calls)."
)
@click.option(
    "--pad", default="0", show_default=True, help="Item padding character, as set in MCS."
)
@click.option(
    "--interval", type=float, default=0.2, show_default=True, help="Seconds between lines."
)
@click.option(
    "--start",
    type=click.DateTime(),
    default=None,
    help="Wall-clock time of the first call at the MCS (default: 2026-05-14 09:00).",
)
@click.option(
    "--live",
    is_flag=True,
    help="Local mode: send each event when the MCS's wall clock (--timezone) reaches it; "
    "events before now are sent at once. --interval is then ignored.",
)
@click.option("--timezone", "tz", default="UTC", show_default=True, help="The MCS's time zone.")
def simulate_mcs_ipsmdr(
    host: str,
    port: int,
    push_to: str | None,
    calls: int,
    seed: int,
    pad: str,
    interval: float,
    start: datetime | None,
    live: bool,
    tz: str,
) -> None:
    """Play a Mitel Communication Service sending IP SMDR events (formats.md §3).

    Local mode (default) listens like MCS on port 2007 and sends every client the events of
    the generated calls; push mode connects out to an agent listening for MCS:

        edge-agent simulate mcs-ipsmdr --port 2007 --calls 50
        edge-agent simulate mcs-ipsmdr --push 127.0.0.1:9007 --pad " "

    Live, as the demo runs it (calls from 20 minutes ago, events sent as they happen):

        edge-agent simulate mcs-ipsmdr --live --timezone Europe/London --start "2026-05-14 08:40"

    Stop it with Ctrl-C.
    """
    if len(pad) != 1 or pad == "|":
        raise click.BadParameter("give exactly one character other than '|'", param_hint="--pad")
    try:
        zone = ZoneInfo(tz)
    except (ValueError, KeyError) as exc:
        raise click.BadParameter(
            "use an IANA zone such as Europe/London", param_hint="--timezone"
        ) from exc
    first = start if start is not None else ipsmdr_sim.DEFAULT_START
    timed = ipsmdr_sim.interleave_timed(
        ipsmdr_sim.generate_calls(count=calls, seed=seed, pad=pad, start=first)
    )
    lines = [line for _, line in timed]
    if push_to:
        target_host, _, target_port = push_to.rpartition(":")
        if not target_host or not target_port.isdigit():
            raise click.BadParameter("use HOST:PORT, e.g. 127.0.0.1:9007", param_hint="--push")
        try:
            sent = ipsmdr_sim.IpSmdrPusher(
                lines, host=target_host, port=int(target_port), interval=interval
            ).push()
        except OSError as exc:
            raise SourceError(  # the simulated PBX cannot reach the agent's listener
                f"cannot push to {push_to}: {exc}; start the agent's push listener first"
            ) from exc
        click.echo(f"pushed {sent} events of {calls} calls to {push_to}")
        return
    server = ipsmdr_sim.IpSmdrServer(
        lines, host=host, port=port, interval=0.0 if live else interval,
        due_at=[when for when, _ in timed] if live else None,
        clock=lambda: datetime.now(zone).replace(tzinfo=None),
    )  # fmt: skip
    serve_until_interrupted(
        server.server,
        host=host,
        port=port,
        banner=lambda bound: (
            f"MCS IP SMDR simulator on {host}:{bound}: {len(lines)} events; Ctrl-C stops"
        ),
    )


@click.command("mivo250-smdr")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=int,
    default=smdr250_sim.DEFAULT_PORT,
    show_default=True,
    help="Port to listen on.",
)
@click.option("--password", default="", help="SMDR socket password the client must send.")
@click.option("--records", type=int, default=20, show_default=True, help="Records to send.")
@click.option("--seed", type=int, default=1, show_default=True, help="Random seed.")
@click.option(
    "--interval", type=float, default=0.5, show_default=True, help="Seconds between records."
)
def simulate_mivo250_smdr(
    host: str, port: int, password: str, records: int, seed: int, interval: float
) -> None:
    """Play a MiVoice Office 250 SMDR socket (formats.md §4): login 0x84, length-prefixed records.

    A client that logs in with the right password receives the generated records; a wrong
    password closes the connection, as the PBX does:

        edge-agent simulate mivo250-smdr --port 4000 --password s3cret --records 100

    Stop it with Ctrl-C.
    """
    texts = [record.text for record in smdr250_sim.generate_records(count=records, seed=seed)]
    server = smdr250_sim.Mivo250SmdrServer(
        texts, password=password, host=host, port=port, interval=interval
    )
    serve_until_interrupted(
        server.server,
        host=host,
        port=port,
        banner=lambda bound: (
            f"MiVO250 SMDR simulator on {host}:{bound}: {records} records; Ctrl-C stops"
        ),
    )


@click.command("mivo250-oai")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=int, default=oai_sim.DEFAULT_PORT, show_default=True, help="Port to listen on."
)
@click.option(
    "--password", default="", help="OAI password the client must send (empty by default)."
)
@click.option("--calls", type=int, default=20, show_default=True, help="Calls to generate.")
@click.option("--seed", type=int, default=1, show_default=True, help="Random seed.")
@click.option(
    "--speed",
    type=float,
    default=1.0,
    show_default=True,
    help="1 = real time, 10 = ten times faster, 0 = at once.",
)
def simulate_mivo250_oai(
    host: str, port: int, password: str, calls: int, seed: int, speed: float
) -> None:
    """Play a MiVoice Office 250 System OAI socket (formats.md §5).

    A client logs in (type 0x87), starts a monitor (`_MS`) and then receives the call events of
    the generated calls, paced by their offsets; `_NO` keep-alives are confirmed:

        edge-agent simulate mivo250-oai --port 4000 --calls 30 --speed 10

    Stop it with Ctrl-C.
    """
    frames = oai_sim.interleave(oai_sim.generate_calls(count=calls, seed=seed), noise_every=10)
    server = oai_sim.Mivo250OaiServer(frames, password=password, host=host, port=port, speed=speed)
    serve_until_interrupted(
        server.server,
        host=host,
        port=port,
        banner=lambda bound: (
            f"MiVO250 OAI simulator on {host}:{bound}: {len(frames)} frames; Ctrl-C stops"
        ),
    )


simulate_command.add_command(simulate_mivb_smdr)
simulate_command.add_command(simulate_mcs_ipsmdr)
simulate_command.add_command(simulate_mivo250_smdr)
simulate_command.add_command(simulate_mivo250_oai)
