"""Sweeping files no recording names: what a worker killed between writing audio and committing
its row left behind.

Contract:

- ``sweep_orphans(engine, settings, now=..., grace=...)`` walks ``recordings_root``
  (``<tenant_id>/<yyyy>/<mm>/<recording_id>.<kind>`` and the writers' ``.NAME.<uuid>.tmp``
  files) and removes every regular file older than ``grace`` (by its modification time) that no
  ``recordings`` row of that tenant names as its ``audio_path`` or ``sip_path``. A file younger
  than ``grace`` may belong to an ingest that has not committed yet, so it is left for a later
  pass; ``GRACE`` is far longer than any batch takes to store.
- Links, and anything that is not a regular file, are never followed or removed: the folder is
  the data centre's own, and something else in it is for a person to look at (logged).
- Returns what was removed, so the caller can log it; run with retention (``purge_expired``
  callers: ``datacenter recordings purge`` and the alarm loop's hourly pass).
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from datacenter.settings import Settings
from datacenter.store.tables.recordings import recordings

log = logging.getLogger(__name__)

GRACE = timedelta(days=1)
_SLICE = 500


@dataclass
class Swept:
    removed: list[str] = field(default_factory=list)  # paths relative to recordings_root
    skipped: list[str] = field(default_factory=list)  # not regular files: left for a person


def sweep_orphans(
    engine: sa.Engine, settings: Settings, *, now: datetime, grace: timedelta = GRACE
) -> Swept:
    root = settings.recordings_root
    swept = Swept()
    if not root.is_dir():
        return swept
    cutoff = (now - grace).timestamp()
    for tenant_dir in _tenant_dirs(root):
        old = list(_old_files(root, tenant_dir, cutoff, swept))
        if not old:
            continue
        named = _named_paths(engine, int(tenant_dir.name), old)
        for relative in old:
            if relative not in named:
                (root / relative).unlink(missing_ok=True)
                swept.removed.append(relative)
    if swept.removed:
        log.warning("recordings: removed %d file(s) no recording names (left by an interrupted "
                    "ingest): %s", len(swept.removed), ", ".join(swept.removed[:10]))  # fmt: skip
    for relative in swept.skipped:
        log.warning("recordings: %s is not a regular file; not touched", relative)
    return swept


def _tenant_dirs(root: Path) -> Iterator[Path]:
    for entry in sorted(root.iterdir()):
        if entry.name.isdigit() and entry.is_dir() and not entry.is_symlink():
            yield entry


def _old_files(root: Path, tenant_dir: Path, cutoff: float, swept: Swept) -> Iterator[str]:
    for folder, dirs, files in os.walk(tenant_dir):  # os.walk never follows links by default
        linked_dirs = [d for d in dirs if Path(folder, d).is_symlink()]
        for name in sorted(files + linked_dirs):
            path = Path(folder, name)
            relative = path.relative_to(root).as_posix()
            info = path.lstat()
            if not stat.S_ISREG(info.st_mode):
                swept.skipped.append(relative)
            elif info.st_mtime < cutoff:
                yield relative


def _named_paths(engine: sa.Engine, tenant_id: int, candidates: list[str]) -> set[str]:
    """Which of ``candidates`` a row names, asked in slices (a tenant may have millions of
    recordings; only the old files' paths are looked up)."""
    named: set[str] = set()
    with engine.connect() as conn:
        for start in range(0, len(candidates), _SLICE):
            part = candidates[start : start + _SLICE]
            rows = conn.execute(
                sa.select(recordings.c.audio_path, recordings.c.sip_path).where(
                    recordings.c.tenant_id == tenant_id,
                    sa.or_(recordings.c.audio_path.in_(part), recordings.c.sip_path.in_(part)),
                )
            )
            named.update(path for row in rows for path in row if path)
    return named
