"""Playing and downloading recordings in the portal: who may, Range requests, the audit log.

On the scoped world (``tests.fixtures.scopes``): every party's call has a 3-second recording;
the Sales and extension-203 users may play (not download), the org-wide user may not play, the
tenant admin may do both.
"""

from __future__ import annotations

import io
import wave

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from datacenter.accounts.audit import AuditEvent, events
from datacenter.accounts.tenants import require_tenant
from datacenter.accounts.users import get_user_by_email
from datacenter.recordings.access import RecordingPolicy, access_of, policy_of, set_policy
from datacenter.store.engine import open_store, write_transaction
from tests.fixtures.scopes import (
    ACME_ADMIN,
    EXT_USER,
    RECORDING_SECONDS,
    SALES_USER,
    TECH_ACME,
    TECH_GLOBEX,
    Party,
    ScopedWorld,
)
from tests.fixtures.web import ACME_USER, login


def audio_url(party: Party, *, download: bool = False) -> str:
    url = f"/calls/{party.record_id}/recordings/{party.recording_id}"
    return url + "/download" if download else url


def client_for(app: Flask, email: str) -> FlaskClient:
    client = app.test_client()
    login(client, email)
    return client


def audit_events(world: ScopedWorld, kind: str, subject: str) -> list[AuditEvent]:
    engine = open_store(world.seeded.settings.store.url)
    try:
        with engine.connect() as conn:
            tenant = require_tenant(conn, "acme")
            return [e for e in events(conn, tenant.tenant_id, limit=10_000)
                    if e.event == kind and e.subject == subject]  # fmt: skip
    finally:
        engine.dispose()


def test_the_admin_plays_the_whole_wav_and_seeks_with_ranges(
    scoped_app: Flask, scoped_world: ScopedWorld
) -> None:
    party = scoped_world.parties["support"]
    client = client_for(scoped_app, ACME_ADMIN)
    page = client.get(f"/calls/{party.record_id}").get_data(as_text=True)
    assert f'src="{audio_url(party)}"' in page and "Download WAV" in page
    played_before = len(audit_events(scoped_world, "recording_played", party.recording_id))

    whole = client.get(audio_url(party))
    assert whole.status_code == 200 and whole.mimetype == "audio/wav"
    assert (
        whole.headers["Accept-Ranges"] == "bytes" and "no-store" in whole.headers["Cache-Control"]
    )
    data = whole.get_data()
    assert int(whole.headers["Content-Length"]) == len(data)
    with wave.open(io.BytesIO(data)) as wav:
        assert wav.getnframes() / wav.getframerate() == RECORDING_SECONDS
        assert wav.getnchannels() == 2

    part = client.get(audio_url(party), headers={"Range": "bytes=60000-70000"})
    assert part.status_code == 206
    assert part.headers["Content-Range"] == f"bytes 60000-70000/{len(data)}"
    assert part.get_data() == data[60000:70001]  # across a 64 kB chunk boundary
    tail = client.get(audio_url(party), headers={"Range": "bytes=-100"})
    assert tail.status_code == 206 and tail.get_data() == data[-100:]
    beyond = client.get(audio_url(party), headers={"Range": f"bytes={len(data) + 10}-"})
    assert beyond.status_code == 416

    # one playback logged: the seeks (ranges not starting at 0) are not new playbacks
    played = audit_events(scoped_world, "recording_played", party.recording_id)
    assert len(played) == played_before + 1 and played[0].actor == ACME_ADMIN
    assert played[0].details == {"record_id": party.record_id}

    download = client.get(audio_url(party, download=True))
    assert download.status_code == 200 and download.get_data() == data
    assert download.headers["Content-Disposition"] == (
        f'attachment; filename="{party.recording_id}.wav"'
    )
    assert audit_events(scoped_world, "recording_downloaded", party.recording_id)


def test_a_permitted_user_plays_only_calls_in_scope_and_may_not_download(
    scoped_app: Flask, scoped_world: ScopedWorld
) -> None:
    sales, ext203 = scoped_world.parties["sales"], scoped_world.parties["ext203"]
    client = client_for(scoped_app, SALES_USER)
    page = client.get(f"/calls/{sales.record_id}").get_data(as_text=True)
    assert "<audio" in page and "Download WAV" not in page
    assert client.get(audio_url(sales)).status_code == 200
    assert client.get(audio_url(sales, download=True)).status_code == 403
    # out of scope, another tenant's, unknown, and a recording under the wrong call: all 403
    globex = scoped_world.parties["globex"]
    for url in (audio_url(ext203), audio_url(globex), f"/calls/{sales.record_id}/recordings/x",
                f"/calls/{ext203.record_id}/recordings/{sales.recording_id}"):  # fmt: skip
        assert client.get(url).status_code == 403, url
    assert audit_events(scoped_world, "recording_played", sales.recording_id)
    assert not [
        e
        for e in audit_events(scoped_world, "recording_played", ext203.recording_id)
        if e.actor == SALES_USER
    ]


def test_a_user_without_the_permission_is_told_why_there_is_no_player(
    scoped_app: Flask, scoped_world: ScopedWorld
) -> None:
    party = scoped_world.parties["sales"]
    client = client_for(scoped_app, ACME_USER)
    page = client.get(f"/calls/{party.record_id}").get_data(as_text=True)
    assert "<audio" not in page and "does not include listening to recordings" in page
    assert client.get(audio_url(party)).status_code == 403
    assert client_for(scoped_app, EXT_USER).get(audio_url(party)).status_code == 403


def test_technicians_may_play_only_where_the_tenant_allows_it(scoped_world: ScopedWorld) -> None:
    engine = open_store(scoped_world.seeded.settings.store.url)
    try:
        with write_transaction(engine) as conn:
            acme = require_tenant(conn, "acme")
            tech, other = get_user_by_email(conn, TECH_ACME), get_user_by_email(conn, TECH_GLOBEX)
            admin = get_user_by_email(conn, ACME_ADMIN)
            assert tech is not None and other is not None and admin is not None
            before = policy_of(conn, acme.tenant_id)
            assert not access_of(conn, tech, acme.tenant_id).play
            set_policy(conn, acme.tenant_id, RecordingPolicy(technicians_may_play=True))
            assert access_of(conn, tech, acme.tenant_id).play
            assert not access_of(conn, tech, acme.tenant_id).download
            assert not access_of(conn, other, acme.tenant_id).play  # not assigned to acme
            assert access_of(conn, admin, acme.tenant_id).download
            set_policy(conn, acme.tenant_id, before)
    finally:
        engine.dispose()


def test_deleted_and_unrecordable_calls_show_why_there_is_no_audio(
    scoped_app: Flask, scoped_world: ScopedWorld
) -> None:
    """Retention's mark, seen on the page; the audio URL is refused like any other."""
    from datacenter.store.tables.recordings import recordings

    party = scoped_world.parties["ext203"]
    engine = open_store(scoped_world.seeded.settings.store.url)
    try:
        with write_transaction(engine) as conn:
            where = recordings.c.recording_id == party.recording_id
            row = conn.execute(sa.select(recordings).where(where)).one()
            conn.execute(recordings.update().where(where).values(
                status="no_audio", reason="caller: encrypted media (SRTP): not recordable"))  # fmt: skip
        client = client_for(scoped_app, ACME_ADMIN)
        page = client.get(f"/calls/{party.record_id}").get_data(as_text=True)
        assert "No audio: caller: encrypted media (SRTP): not recordable" in page
        assert client.get(audio_url(party)).status_code == 403
    finally:
        with write_transaction(engine) as conn:
            conn.execute(recordings.update().where(where).values(status=row.status, reason=""))
        engine.dispose()
