"""The exception tree shared by the edge agent and the data centre.

    CallCollectError            1  base: every expected failure; carries an exit code
    ├── ConfigError             2  a setting is missing or wrong; names the key and the fix
    │   └── KeyFileError        2  (shared/keys.py) a key or certificate file is unusable
    ├── ValidationError         3  a record or document does not match its schema; names the field
    │   ├── ICDRValidationError 3
    │   ├── TariffImportError   3  (datacenter/rating/tariffs.py) a tariff plan or rate deck
    │   ├── FilterError         3  (datacenter/reports/filters.py) a report filter's syntax
    │   └── RuleError           3  (datacenter/cost_alarms/rules.py) a cost alarm rules document
    ├── EnvelopeError           4  a batch file cannot be opened: truncated, tampered, wrong format
    │   └── ReceiptError        4  (shared/receipts.py) a receipt is malformed or not ours
    ├── SourceError             5  a PBX source failed (connect, login, read)
    │   ├── UnsupportedSchema   5  (edge_agent/sources/lync_cdr/schema.py)
    │   └── StreamFault         5  (edge_agent/sources/mivo250_socket/framing.py)
    ├── TransportError          6  the uplink to the data centre failed
    │   └── HostKeyMismatch     7  the server presented a key other than the pinned one
    ├── StoreError              8  the data centre store refused an operation
    │   ├── RollupMismatch     12  (datacenter/store/rollups.py) rollups differ from the raw calls
    │   └── JobsUnfinished     13  (datacenter/jobs/workers.py) store jobs failed or left undone
    ├── AgentStateError         9  the agent's state directory refused an operation
    │   ├── SpoolError          9  (edge_agent/spool.py) the spool database
    │   │   └── SpoolCorrupt    9  (edge_agent/spool.py) spool.db is damaged: rebuild it
    │   ├── SinkUnavailable     9  (edge_agent/sources/base.py) units could not be journalled
    │   │   └── JournalWriteError 9  (edge_agent/journal.py) an append failed, rolled back
    │   ├── BatchError          9  (edge_agent/delivery/batches.py) a batch cannot be rebuilt
    │   └── AgentBusy          10  (edge_agent/service.py) another agent process holds the state
    └── NotifyError            11  an alarm email or webhook could not be delivered

Each class has an ``exit_code`` so the command-line tools map errors to documented exit codes:
``shared/cli_errors.py`` prints the message and exits with it, and docs/operations.md lists every
class above with its code, cause and fix (tests/integration/test_exit_codes.py holds the three to
one another). A class named with its module above lives beside the code that raises it and
subclasses its branch here. Low-level errors (paramiko, pyodbc, socket, SQLAlchemy) are mapped to
these at the boundary and chained with ``raise ... from``.
"""

from __future__ import annotations


class CallCollectError(Exception):
    """Base of every expected callcollect failure."""

    exit_code = 1


class ConfigError(CallCollectError):
    """A configuration value is missing or invalid."""

    exit_code = 2

    def __init__(self, key: str, problem: str, fix: str) -> None:
        self.key = key
        self.problem = problem
        self.fix = fix
        super().__init__(f"config key '{key}': {problem}. Fix: {fix}")


class ValidationError(CallCollectError):
    """A document does not match its schema."""

    exit_code = 3

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"field '{field}': {problem}")


class ICDRValidationError(ValidationError):
    """An intermediate call detail record is invalid."""

    exit_code = 3


class EnvelopeError(CallCollectError):
    """A batch file is truncated, tampered with, or not a batch file."""

    exit_code = 4


class SourceError(CallCollectError):
    """A PBX source could not be read."""

    exit_code = 5


class TransportError(CallCollectError):
    """The uplink to the data centre failed."""

    exit_code = 6


class HostKeyMismatch(TransportError):
    """The data centre presented a host key other than the pinned one."""

    exit_code = 7


class StoreError(CallCollectError):
    """The data centre store refused an operation."""

    exit_code = 8


class AgentStateError(CallCollectError):
    """The agent's state directory (spool, batch files, lock) refused an operation."""

    exit_code = 9


class NotifyError(CallCollectError):
    """A notification could not be delivered; the message says where and what to check."""

    exit_code = 11
