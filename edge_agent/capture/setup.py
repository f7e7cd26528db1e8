"""The agent's ``[capture]`` configuration turned into the capture process's settings and the
recording outbox's."""

from __future__ import annotations

from datetime import timedelta

from cryptography import x509

from edge_agent.capture.health import CAPTURE_DIR
from edge_agent.capture.process import RECORDINGS_DIR, CaptureSettings
from edge_agent.capture.recorder import RecorderSettings
from edge_agent.capture.ring import RingGeometry
from edge_agent.capture.rules import RecordingRules
from edge_agent.config import AgentSettings
from edge_agent.delivery.recordings import OutboxSettings, Protect, RecordingOutbox
from edge_agent.spool import Spool
from shared.icdr import ICDR

RING_BLOCK = 1 << 20


def recording_rules(settings: AgentSettings) -> RecordingRules:
    config = settings.capture
    return RecordingRules.from_config(
        mode=config.rules_mode,
        entries={
            "extensions": list(config.rule_extensions),
            "external_numbers": list(config.rule_external_numbers),
            "trunks": list(config.rule_trunks),
            "account_codes": list(config.rule_account_codes),
        },
        record_internal=config.record_internal,
    )


def capture_settings(settings: AgentSettings) -> CaptureSettings:
    config = settings.capture
    directory = settings.agent.state_dir / CAPTURE_DIR
    rules = recording_rules(settings)
    sip_ports = tuple(port for low, high in config.sip_ports for port in range(low, high + 1))
    api_host, _, api_port = config.pause_api.rpartition(":")
    return CaptureSettings(
        interface=config.interface,
        directory=directory,
        rtp_ports=config.rtp_ports,
        sip_ports=sip_ports,
        recorder=RecorderSettings(
            directory / RECORDINGS_DIR,
            agent_id=settings.agent.id,
            rules=rules,
            devices=config.device_map(),
            extension_digits=config.extension_digits,
        ),
        jitter_window=config.jitter_window_ms / 1000,
        idle_timeout=float(config.idle_timeout_seconds),
        promiscuous=config.promiscuous,
        geometry=RingGeometry(RING_BLOCK, config.ring_mb),
        api_host=api_host.strip("[]") or "127.0.0.1",
        api_port=int(api_port) if api_port else None,
    )


def recording_outbox(
    settings: AgentSettings,
    spool: Spool,
    *,
    protect: Protect | None,
    receipts_certificate: x509.Certificate | None = None,
) -> RecordingOutbox:
    """The outbox for recording batches, linking against records in ``spool``."""
    config = settings.capture
    share = settings.uplink.max_kbps * config.upload_share_percent // 100
    return RecordingOutbox(
        OutboxSettings(
            state_dir=settings.agent.state_dir,
            agent_id=settings.agent.id,
            tenant=settings.agent.tenant,
            rules=recording_rules(settings),
            link_window=timedelta(seconds=config.link_window_seconds),
            max_bytes=config.batch_max_mb * 1024 * 1024,
            remote_dir=config.remote_dir,
            kbps=max(share, 1) if settings.uplink.max_kbps else 0,
            protect=protect,
            receipts_certificate=receipts_certificate,
        ),
        recent=lambda since: [ICDR.from_json(body) for body in spool.bodies_spooled_since(since)],
    )
