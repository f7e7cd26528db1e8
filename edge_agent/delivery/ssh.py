"""paramiko for the agent, imported without `invoke`.

paramiko's ``config`` module imports ``invoke`` (a task runner that pulls in asyncio,
unittest.mock and a YAML parser: about 6 MB of RSS and 118 modules) only to run ``Match exec``
lines of OpenSSH client config files. The agent never reads such files (its uplink settings
come from agent.toml), so it imports paramiko through this module, which makes that optional
import fail as it does where invoke is not installed; paramiko then raises only if a ``Match
exec`` line is ever evaluated. Every agent module imports paramiko from here
(tests/unit/test_import_boundaries.py checks it).
"""

from __future__ import annotations

import sys

_BLOCKED = "invoke" not in sys.modules
if _BLOCKED:
    sys.modules["invoke"] = None  # type: ignore[assignment]  # `import invoke` -> ImportError
try:
    import paramiko as paramiko
finally:
    if _BLOCKED:  # a later `import invoke` elsewhere in the process works as usual
        del sys.modules["invoke"]

__all__ = ["paramiko"]
