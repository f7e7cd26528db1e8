"""The recordings of a call, as the portal reads them (``TenantScope.recordings`` is the way in).

``recordings_of_call`` needs the tenant and the call; it does not check the viewer's scope:
``TenantScope.recordings`` does that first, and is what views call.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from datacenter.store.tables.recordings import recordings


@dataclass(frozen=True, slots=True)
class StoredRecording:
    tenant_id: int
    recording_id: str
    record_id: str | None
    linked_by: str | None
    status: str  # stored, no_audio, deleted
    reason: str  # why there is no audio (no_audio)
    duration_seconds: float
    start_time: datetime | None
    audio_path: str | None
    audio_bytes: int
    deleted_at: datetime | None

    @property
    def playable(self) -> bool:
        return self.status == "stored" and self.audio_path is not None

    @property
    def file_name(self) -> str:
        return f"{self.recording_id}.wav"


_COLUMNS = [recordings.c[name] for name in StoredRecording.__dataclass_fields__]


def recordings_of_call(
    conn: sa.Connection, tenant_id: int, record_id: str
) -> list[StoredRecording]:
    rows = conn.execute(
        sa.select(*_COLUMNS)
        .where(recordings.c.tenant_id == tenant_id, recordings.c.record_id == record_id)
        .order_by(recordings.c.start_time, recordings.c.recording_id)
    )
    return [StoredRecording(**row._asdict()) for row in rows]
