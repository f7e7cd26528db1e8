"""A permitted user plays a call's recording in headless Chromium; an out-of-scope user gets 403.

On the real server (`datacenter serve`, gunicorn) over the scoped world, whose party calls
each carry a 3-second recording the agent's own outbox sealed. The browser loads the player on
the call page, plays it (muted: headless Chromium's autoplay policy lets muted media start
without a gesture) and the audio element's state is read: its duration, readyState and that it
advanced. The audit log then holds the playback under the user's name.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page

from datacenter.accounts.audit import events
from datacenter.accounts.tenants import require_tenant
from datacenter.store.engine import open_store
from tests.fixtures.browser import LiveServer
from tests.fixtures.scopes import EXT_USER, RECORDING_SECONDS, SALES_USER, ScopedWorld
from tests.fixtures.web import PASSWORD

pytestmark = pytest.mark.browser
HAVE_ENOUGH_DATA = 4  # HTMLMediaElement.readyState


def sign_in(page: Page, server: LiveServer, email: str) -> None:
    page.goto(f"{server.url}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{server.url}/**")


def test_an_in_scope_user_plays_the_recording_and_it_is_audited(
    chromium_page: Page, scoped_live_server: LiveServer, scoped_world: ScopedWorld, tmp_path: Path
) -> None:
    page, server = chromium_page, scoped_live_server
    party = scoped_world.parties["sales"]
    sign_in(page, server, SALES_USER)
    page.goto(f"{server.url}/calls/{party.record_id}")
    audio = page.locator(f'[data-recording="{party.recording_id}"] audio')
    audio.wait_for()
    page.screenshot(path=str(tmp_path / "call-with-recording.png"), full_page=True)
    # Loaded and decoded by the browser's own media stack, over Range requests
    page.wait_for_function(
        "el => el.readyState >= 1 && isFinite(el.duration)", arg=audio.element_handle()
    )
    duration = audio.evaluate("el => el.duration")
    assert duration == pytest.approx(RECORDING_SECONDS, abs=0.01)
    audio.evaluate("el => { el.muted = true; return el.play(); }")
    page.wait_for_function(
        f"el => el.readyState >= {HAVE_ENOUGH_DATA} || el.ended", arg=audio.element_handle()
    )
    page.wait_for_function("el => el.currentTime > 0", arg=audio.element_handle())
    assert audio.evaluate("el => el.error") is None
    # seeking within the file works (the server answers byte ranges)
    audio.evaluate("el => { el.currentTime = 2.0; }")
    page.wait_for_function("el => !el.seeking && el.currentTime >= 2.0", arg=audio.element_handle())

    engine = open_store(scoped_world.seeded.settings.store.url)
    try:
        with engine.connect() as conn:
            tenant = require_tenant(conn, "acme")
            played = [e for e in events(conn, tenant.tenant_id, limit=10_000)
                      if e.event == "recording_played" and e.actor == SALES_USER
                      and e.subject == party.recording_id]  # fmt: skip
    finally:
        engine.dispose()
    assert played and played[0].address == "127.0.0.1"


def test_an_out_of_scope_user_is_refused_the_audio(
    chromium_page: Page, scoped_live_server: LiveServer, scoped_world: ScopedWorld
) -> None:
    page, server = chromium_page, scoped_live_server
    party = scoped_world.parties["sales"]
    sign_in(page, server, EXT_USER)  # may play recordings, but only of extension 203's calls
    url = f"{server.url}/calls/{party.record_id}/recordings/{party.recording_id}"
    response = page.goto(url)
    assert response is not None and response.status == 403
    assert "Traceback" not in page.content()
    own = scoped_world.parties["ext203"]
    page.goto(f"{server.url}/calls/{own.record_id}")
    audio = page.locator(f'[data-recording="{own.recording_id}"] audio')
    page.wait_for_function("el => el.readyState >= 1", arg=audio.element_handle())
