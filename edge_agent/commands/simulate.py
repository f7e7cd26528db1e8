"""`edge-agent simulate`: play a PBX on this machine, for tests, demos and rehearsals.

Each simulator module defines its own click command; this group gathers them, one line each.
"""

from __future__ import annotations

import click

from shared.lazy_group import LazyGroup

# One line per simulator, imported when used: lync-cdr needs psycopg (the `simulators` extra).
SIMULATORS = {
    "mivb-smdr": "edge_agent.simulators.mivb_smdr:simulate_mivb_smdr",
    "lync-cdr": "edge_agent.simulators.lcscdr:simulate_lync_cdr",
    "mcs-ipsmdr": "edge_agent.simulators.mcs_ipsmdr:simulate_mcs_ipsmdr",
    "mivo250-smdr": "edge_agent.simulators.mivo250_smdr:simulate_mivo250_smdr",
    "mivo250-oai": "edge_agent.simulators.mivo250_oai:simulate_mivo250_oai",
}


@click.group(
    "simulate",
    cls=LazyGroup,
    lazy=SIMULATORS,
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
