"""File and directory modes for call data: owner-only, set exactly at creation whatever the umask.

Call records name people and numbers, so the agent's state (spool, journal, batch files) is
readable by its own account only: files ``FILE_MODE`` (0600), directories ``DIR_MODE`` (0700).
No group needs to read them: ``edge-agent status`` and the other commands run as the agent's
account (the packaged unit and ``scripts/install.sh`` create it). ``os.open``/``mkdir`` modes
are masked by the umask (they can only come out stricter), so the mode is also set with
``chmod`` after creation: it is exactly these, never looser and never stricter by accident.
"""

from __future__ import annotations

from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def make_private_dir(path: Path) -> bool:
    """Create ``path`` (and missing parents) with ``DIR_MODE``; True if ``path`` was created.

    An existing directory keeps its mode: an operator may have chosen 0750 on purpose.
    """
    if path.is_dir():
        return False
    missing = [p for p in (path, *path.parents) if not p.exists()]
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    for created in missing:
        created.chmod(DIR_MODE)
    return True


def restrict_file(path: Path) -> None:
    """Give an existing file ``FILE_MODE`` (for files a library created, such as SQLite's)."""
    if path.exists():
        path.chmod(FILE_MODE)
