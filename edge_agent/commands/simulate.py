"""`edge-agent simulate`: play a PBX on this machine, for tests, demos and rehearsals.

Each simulator module defines its own click command; this group gathers them, one line each.
"""

from __future__ import annotations

import click

from edge_agent.simulators.lcscdr import simulate_lync_cdr
from edge_agent.simulators.mcs_ipsmdr import simulate_mcs_ipsmdr
from edge_agent.simulators.mivb_smdr import simulate_mivb_smdr
from edge_agent.simulators.mivo250_oai import simulate_mivo250_oai
from edge_agent.simulators.mivo250_smdr import simulate_mivo250_smdr


@click.group("simulate")
def simulate_command() -> None:
    """Play a PBX's call-record interface with generated, fictional calls.

    Point a source of the same kind at the simulator to try a configuration end to end before
    the real PBX is reachable, e.g.:

        edge-agent simulate mivb-smdr --port 1752 --rate 2 --count 500

    Simulators listen on 127.0.0.1 unless told otherwise. Every number they generate is from a
    range reserved for fiction.
    """


simulate_command.add_command(simulate_mivb_smdr)
simulate_command.add_command(simulate_lync_cdr)
simulate_command.add_command(simulate_mcs_ipsmdr)
simulate_command.add_command(simulate_mivo250_smdr)
simulate_command.add_command(simulate_mivo250_oai)
