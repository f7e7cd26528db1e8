"""Playing and downloading call recordings: the decrypted WAV, streamed with HTTP Range support.

Contract:

- ``GET /calls/<record_id>/recordings/<recording_id>`` answers ``audio/wav`` for an ``<audio>``
  element on the same origin; ``.../download`` the same as an attachment. Both need the
  ``tenant`` or ``tenant_admin`` role, the right to play (or download) the tenant's recordings
  (``datacenter.recordings.access``), the call in the viewer's scope (``TenantScope``) and the
  recording stored for that call. **Anything else is 403**, whatever the reason (no such call or
  recording, another tenant's, out of scope, no permission, audio deleted): one answer for all
  says nothing about what exists. The call page itself keeps the portal's 404 for a call out of
  scope.
- HTTP Range (``bytes=a-b``) is answered 206 with only those bytes (``werkzeug``'s
  ``make_conditional``), decrypting only the 64 kB chunks the range touches (``vault``), so the
  player can seek and the WAV is never decrypted whole in memory. Responses are
  ``Cache-Control: no-store``.
- Every playback is one ``recording_played`` audit event: a request without a Range or whose
  range starts at byte 0 (a player starts there; its seeks and read-aheads are not new
  playbacks). Every download is one ``recording_downloaded``. Refusals are not logged as plays.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, abort, current_app, request
from flask.typing import ResponseReturnValue
from werkzeug.wsgi import FileWrapper

from datacenter.recordings.access import RecordingAccess, access_of
from datacenter.recordings.stored import StoredRecording
from datacenter.recordings.vault import VaultError, load_recordings_key, open_decrypted
from datacenter.settings import Settings
from datacenter.store.engine import write_transaction
from datacenter.store.scoped import TenantScope
from datacenter.web.auth import record_audit, require_viewer, role_required
from datacenter.web.database import store
from shared.errors import ConfigError

log = logging.getLogger(__name__)

STREAM_BLOCK = 64 * 1024
bp = Blueprint("recordings", __name__)


def viewer_access() -> RecordingAccess:
    """What the signed-in viewer may do with their tenant's recordings."""
    viewer = require_viewer()
    if viewer.tenant is None:
        return RecordingAccess()
    return access_of(store.connection(), viewer.user, viewer.tenant.tenant_id)


@bp.route("/calls/<record_id>/recordings/<recording_id>")
@role_required("tenant", "tenant_admin")
def play(record_id: str, recording_id: str) -> ResponseReturnValue:
    recording = _allowed(record_id, recording_id, download=False)
    range_ = request.range
    if range_ is None or not range_.ranges or range_.ranges[0][0] == 0:
        _audit("recording_played", recording)
    return _stream(recording, download=False)


@bp.route("/calls/<record_id>/recordings/<recording_id>/download")
@role_required("tenant", "tenant_admin")
def download(record_id: str, recording_id: str) -> ResponseReturnValue:
    recording = _allowed(record_id, recording_id, download=True)
    _audit("recording_downloaded", recording)
    return _stream(recording, download=True)


def _allowed(record_id: str, recording_id: str, *, download: bool) -> StoredRecording:
    viewer = require_viewer()
    access = viewer_access()
    if viewer.tenant is None or not (access.download if download else access.play):
        abort(403)
    scope = TenantScope(
        store.connection(), viewer.tenant.tenant_id, user_scope=viewer.scope,
        mask_digits=viewer.mask_digits,
    )  # fmt: skip
    found = [r for r in scope.recordings(record_id) if r.recording_id == recording_id]
    if not found or not found[0].playable:
        abort(403)
    return found[0]


def _audit(event: str, recording: StoredRecording) -> None:
    with write_transaction(store.engine) as conn:
        record_audit(
            conn, event, tenant_id=recording.tenant_id, subject=recording.recording_id,
            details={"record_id": recording.record_id},
        )  # fmt: skip


def _stream(recording: StoredRecording, *, download: bool) -> Response:
    settings: Settings = current_app.config["CALLCOLLECT_SETTINGS"]
    assert recording.audio_path is not None  # playable
    try:
        key = load_recordings_key(settings.keys.recordings_key)
        reader = open_decrypted(
            settings.recordings_root / recording.audio_path, key=key,
            tenant_id=recording.tenant_id, recording_id=recording.recording_id, kind="wav",
        )  # fmt: skip
    except (ConfigError, VaultError, OSError) as exc:
        log.error("recording %s cannot be opened: %s", recording.recording_id, exc)
        abort(500)
    response = Response(
        FileWrapper(reader, STREAM_BLOCK),  # type: ignore[arg-type]  # a seekable reader
        mimetype="audio/wav",
        direct_passthrough=True,
    )
    response.content_length = reader.size
    response.headers["Cache-Control"] = "private, no-store"
    if download:
        response.headers["Content-Disposition"] = f'attachment; filename="{recording.file_name}"'
    response.make_conditional(request, accept_ranges=True, complete_length=reader.size)
    return response
