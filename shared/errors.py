"""The exception tree shared by the edge agent and the data centre.

    CallCollectError              base: every expected failure; carries an exit code
    ├── ConfigError               a setting is missing or wrong; names the key and the fix
    ├── ValidationError           a record or document does not match its schema; names the field
    │   └── ICDRValidationError
    ├── EnvelopeError             a batch file cannot be opened: truncated, tampered, wrong format
    ├── SourceError               a PBX source failed (connect, login, read)
    ├── TransportError            the uplink to the data centre failed
    │   └── HostKeyMismatch       the server presented a key other than the pinned one
    └── StoreError                the data centre store refused an operation

Each class has an ``exit_code`` so the command-line tools map errors to documented exit codes
(docs/operations.md lists them). Low-level errors (paramiko, pyodbc, socket, SQLAlchemy) are
mapped to these at the boundary and chained with ``raise ... from``.
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
