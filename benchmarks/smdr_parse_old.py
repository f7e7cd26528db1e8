"""The old MiVB SMDR parser's rate, for ``smdr_parse.py``'s baseline: run in a child process.

    python benchmarks/smdr_parse_old.py TREE DATA LAYOUT RECEIVED

TREE is a ``git archive`` of an older commit (``smdr_parse.py --old-rev``), DATA a file of CR LF
lines, RECEIVED the ISO receive time. The old tree's modules are imported ahead of the checkout
(checked: every one must come from TREE), with the same timing loop (``smdr_timing``) as today's
parser. Prints one JSON object: CPU and wall seconds and records produced, fixed and auto layout.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo


def main() -> None:
    tree, data_path, layout, received_text = sys.argv[1:5]
    sys.path.insert(0, tree)
    from smdr_timing import Kit, run

    from edge_agent.sources.base import RawUnit, SourceContext
    from edge_agent.sources.mivb_smdr import driver
    from edge_agent.sources.mivb_smdr.driver import MivbSmdrParser, ParserSettings
    from edge_agent.sources.mivb_smdr.layout import LayoutFlags
    from edge_agent.sources.streams.lines import LineFramer
    from shared import icdr

    for module in (driver, icdr):
        if not Path(module.__file__ or "").resolve().is_relative_to(Path(tree).resolve()):
            raise SystemExit(f"{module.__name__} came from {module.__file__}, not the old tree")
    data = Path(data_path).read_bytes()
    received = datetime.fromisoformat(received_text)
    ctx = SourceContext(agent_id="bench", source_id="pbx1", timezone=ZoneInfo("Europe/London"))
    kit = Kit(LineFramer, RawUnit, icdr.ICDR)
    fixed = MivbSmdrParser(ctx, ParserSettings(layout=LayoutFlags.parse(layout)))
    auto = MivbSmdrParser(ctx, ParserSettings(layout=None))
    out = {}
    for name, parser in (("fixed", fixed), ("auto", auto)):
        timing = run(kit, data, received, parser.feed)
        out[name] = {"cpu": timing.cpu, "wall": timing.wall, "produced": timing.produced}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
