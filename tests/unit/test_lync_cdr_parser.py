"""LcsCDR rows -> ICDRs: one table per rule of formats.md §1.4-§1.9."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from edge_agent.sources.base import Quarantined, RawUnit, SourceContext
from edge_agent.sources.lync_cdr.driver import make_parser
from edge_agent.sources.lync_cdr.parser import LyncCdrParser, party
from edge_agent.sources.lync_cdr.schema import csv_units, dump_row, serialise_row
from shared.icdr import ICDR

CTX = SourceContext(agent_id="agent-1", source_id="lync", timezone=ZoneInfo("Europe/London"))
RECEIVED = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def gen_row(**overrides: Any) -> dict[str, Any]:
    """An answered outgoing PSTN call (alice -> 01632 960001), as the poll serialises it."""
    row: dict[str, Any] = {
        "SessionIdTime": "2024-03-01T09:00:00.000",
        "SessionIdSeq": 1,
        "CorrelationId": "6f9619ff-8b86-d011-b42d-00c04fc964ff",
        "InviteTime": "2024-03-01T09:00:00.003",
        "ResponseTime": "2024-03-01T09:00:07.503",
        "SessionEndTime": "2024-03-01T09:02:13.003",
        "ResponseCode": 200,
        "DiagnosticId": None,
        "MediaTypes": 16,
        "CallFlag": 0,
        "ReplaceDialogIdTime": None,
        "ReplaceDialogIdSeq": None,
        "StartedByUri": "sip:alice@example.com",
        "User1Uri": "sip:alice@example.com",
        "User2Uri": "sip:+441632960001@example.com;user=phone",
        "TargetUri": "sip:+441632960001@example.com;user=phone",
        "ReferredByUri": None,
        "OnBehalfOfUri": None,
        "User1ClientType": 4,
        "User2ClientType": 1,
        "FromGatewayId": None,
        "ToGatewayId": 1,
        "FromMediationServerId": None,
        "ToMediationServerId": 1,
        "FromPhoneUri": None,
        "ConnectedPhoneUri": "tel:+441632960001",
        "FromGateway": None,
        "ToGateway": "gw01.example.com",
        "FromMediationServer": None,
        "ToMediationServer": "med01.example.com",
        "DisconnectedByUri": "sip:alice@example.com",
        "DisconnectedByPhoneUri": None,
        "PoolFQDN": "pool01.example.com",
    }
    row.update(overrides)
    return row


def inbound(**overrides: Any) -> dict[str, Any]:
    """An answered incoming PSTN call (020 7946 0001 -> bob, dialled DID 01632 960100)."""
    values: dict[str, Any] = {
        "StartedByUri": "sip:+442079460001@example.com;user=phone",
        "User1Uri": "sip:+442079460001@example.com;user=phone",
        "User2Uri": "sip:bob@example.com",
        "TargetUri": "sip:+441632960100@example.com;user=phone",
        "FromGatewayId": 1,
        "ToGatewayId": None,
        "FromMediationServerId": 1,
        "ToMediationServerId": None,
        "FromPhoneUri": "tel:+442079460001",
        "ConnectedPhoneUri": None,
        "FromGateway": "gw01.example.com",
        "ToGateway": None,
        "FromMediationServer": "med01.example.com",
        "ToMediationServer": None,
    }
    return gen_row(**(values | overrides))


def parse(row: dict[str, Any] | bytes) -> ICDR | Quarantined:
    data = row if isinstance(row, bytes) else dump_row(row)
    results = LyncCdrParser(CTX).feed(RawUnit("lync", 7, RECEIVED, data))
    assert len(results) == 1
    return results[0]


def call(row: dict[str, Any]) -> ICDR:
    result = parse(row)
    assert isinstance(result, ICDR), result
    return result


# --- direction and parties (§1.4) --------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "direction", "calling", "called", "dialled", "extension", "trunk", "signal"),
    [
        (gen_row(), "out", "alice@example.com", "+441632960001", "+441632960001",
         "alice@example.com", "gw01.example.com", "gateway"),
        (inbound(), "in", "+442079460001", "bob@example.com", "+441632960100",
         "bob@example.com", "gw01.example.com", "gateway"),
        # User1 is the callee here: the caller is SessionStartedBy, whatever the order.
        (inbound(User1Uri="sip:bob@example.com",
                 User2Uri="sip:+442079460001@example.com;user=phone"),
         "in", "+442079460001", "bob@example.com", "+441632960100", "bob@example.com",
         "gw01.example.com", "gateway"),
        # A SIP trunk without a gateway name: the mediation server alone marks the PSTN side.
        (gen_row(ToGatewayId=None, ToGateway=None), "out", "alice@example.com", "+441632960001",
         "+441632960001", "alice@example.com", "med01.example.com", "mediation"),
        # Dialled a user URI (not a phone URI): dialled digits come from the connected number.
        (gen_row(TargetUri="sip:pstn-alias@example.com"), "out", "alice@example.com",
         "+441632960001", "+441632960001", "alice@example.com", "gw01.example.com", "gateway"),
        (gen_row(FromGatewayId=2, FromMediationServerId=1, FromGateway="gw02.example.com",
                 FromPhoneUri="tel:+447700900123", TargetUri="sip:carol@example.com",
                 ConnectedPhoneUri="tel:+447700900456",
                 StartedByUri="sip:+447700900123@example.com;user=phone"),
         "tandem", "+447700900123", "+447700900456", "", "carol@example.com",
         "gw01.example.com", "gateway"),
        # Forwarded by the user who owns the dialled DID: User1/User2 are both external, so the
        # cost belongs to the DID (the directory maps it to its owner), never to the mobile.
        (gen_row(FromGatewayId=2, FromMediationServerId=1, FromGateway="gw02.example.com",
                 FromPhoneUri="tel:+442079460003",
                 TargetUri="sip:+441632960100@example.com;user=phone",
                 User1Uri="sip:+442079460003@example.com;user=phone",
                 User2Uri="sip:+447700900456@example.com;user=phone",
                 ConnectedPhoneUri="tel:+447700900456",
                 StartedByUri="sip:+442079460003@example.com;user=phone"),
         "tandem", "+442079460003", "+447700900456", "", "+441632960100",
         "gw01.example.com", "gateway"),
        (gen_row(ToGatewayId=None, ToMediationServerId=None, ToGateway=None,
                 ToMediationServer=None, User2Uri="sip:bob@example.com",
                 TargetUri="sip:bob@example.com", ConnectedPhoneUri=None),
         "internal", "alice@example.com", "bob@example.com", "", "alice@example.com", "", None),
    ],
    ids=["out", "in", "in-user1-is-callee", "out-mediation-only", "out-dialled-uri", "tandem",
         "tandem-to-did", "internal"],
)  # fmt: skip
def test_direction_and_parties(
    row: dict[str, Any],
    direction: str,
    calling: str,
    called: str,
    dialled: str,
    extension: str,
    trunk: str,
    signal: str | None,
) -> None:
    rec = call(row)
    assert (rec.direction.value, rec.calling, rec.called) == (direction, calling, called)
    assert (rec.dialled_digits, rec.extension, rec.trunk) == (dialled, extension, trunk)
    assert rec.extra.get("pstn_signal") == signal


@pytest.mark.parametrize(
    ("uri", "text", "is_phone"),
    [
        ("tel:+441632960001", "+441632960001", True),
        ("sip:+441632960001@example.com;user=phone", "+441632960001", True),
        ("tel:+441632960001;ext=201", "+441632960001", True),
        ("tel:960001;phone-context=example.com", "960001", True),
        ("SIP:alice@example.com", "alice@example.com", False),
        ("sip:alice@example.com;opaque=user:epid:abc", "alice@example.com", False),
        ("sip:reception@example.com;user=phone", "reception", True),
        ("+15550100", "+15550100", True),
    ],
)
def test_party_uri_forms(uri: str, text: str, is_phone: bool) -> None:
    normalised = party(uri)
    assert normalised is not None
    assert (normalised.text, normalised.is_phone) == (text, is_phone)


@pytest.mark.parametrize("uri", [None, "", "   "])
def test_blank_uri_is_no_party(uri: str | None) -> None:
    """A CSV export writes NULL as an empty field: that is no party, not a transfer by ''."""
    assert party(uri) is None
    rec = call(gen_row(ReferredByUri=uri, OnBehalfOfUri=uri))
    assert not rec.transferred and rec.third_party == "" and "referred" not in rec.flags


# --- times (§1.5) and outcome (§1.8) -------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "answered", "talk", "ring", "flags"),
    [
        ({}, True, 126, 7, ()),  # 125.5 s of talk is billed as 126 whole seconds
        ({"SessionEndTime": "2024-03-01T09:00:07.503"}, True, 0, 7, ()),
        ({"SessionEndTime": "2024-03-01T09:00:05.000"}, True, 0, 7, ("negative_duration",)),
        ({"SessionEndTime": None}, True, 0, 7, ("end_pending",)),
        ({"ResponseCode": 486, "SessionEndTime": "2024-03-01T09:00:07.503"}, False, 0, 7, ()),
        ({"ResponseCode": None, "ResponseTime": None, "SessionEndTime": None}, False, 0, 0, ()),
        ({"ResponseCode": 200, "ResponseTime": None}, False, 0, 0, ()),
        ({"ResponseTime": "2024-03-01T08:59:59.000"}, True, 133, 0, ("clock_skew",)),  # from invite
        # A final error and no end time: over at the response, rung from invite to response.
        ({"ResponseCode": 503, "ResponseTime": "2024-03-01T09:00:30.003", "SessionEndTime": None},
         False, 0, 30, ()),
        ({"ResponseCode": 487, "ResponseTime": "2024-03-01T09:00:12.503", "SessionEndTime": None},
         False, 0, 12, ()),
    ],
    ids=["answered", "zero-talk", "end-before-answer", "end-pending", "busy", "no-response",
         "200-without-time", "answer-before-invite", "failed-without-end",
         "cancelled-without-end"],
)  # fmt: skip
def test_times_and_talk(
    overrides: dict[str, Any], answered: bool, talk: int, ring: int, flags: tuple[str, ...]
) -> None:
    rec = call(gen_row(**overrides))
    assert (rec.answered, rec.talk_seconds, rec.ring_seconds) == (answered, talk, ring)
    assert set(flags) <= set(rec.flags)
    assert rec.start <= (rec.answer or rec.start) <= rec.end
    assert (rec.answer is not None) == answered


def test_times_are_utc_and_keep_milliseconds() -> None:
    rec = call(gen_row())
    assert rec.start == datetime(2024, 3, 1, 9, 0, 0, 3000, tzinfo=UTC)
    assert rec.answer == datetime(2024, 3, 1, 9, 0, 7, 503000, tzinfo=UTC)
    assert rec.end == datetime(2024, 3, 1, 9, 2, 13, 3000, tzinfo=UTC)
    assert rec.extra["talk_ms"] == "125500"


def test_start_falls_back_to_session_time_without_invite() -> None:
    rec = call(gen_row(InviteTime=None))
    assert rec.start == datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("code", "completion", "answered"),
    [
        (200, "answered", True), (486, "busy", False), (600, "busy", False),
        (480, "no_answer", False), (408, "no_answer", False), (603, "no_answer", False),
        (487, "abandoned", False), (404, "invalid", False), (484, "invalid", False),
        (485, "invalid", False), (403, "failed", False), (503, "failed", False),
        (None, "unknown", False), (183, "unknown", False),
    ],
)  # fmt: skip
def test_response_code_completion(code: int | None, completion: str, answered: bool) -> None:
    rec = call(gen_row(ResponseCode=code))
    assert (rec.completion.value, rec.answered) == (completion, answered)
    assert rec.completion_source == ("" if code is None else str(code))


# --- legs: billing once, transfers, conferences (§1.7, §1.9) -------------------------------------


@pytest.mark.parametrize(
    ("overrides", "flags", "billable", "conference", "transferred"),
    [
        ({}, set(), True, False, False),
        ({"CallFlag": 2}, {"rgs_agent_leg"}, False, False, False),
        # The retry that connected is the call that happened: billed (it was not, before).
        ({"CallFlag": 1}, {"retried_session"}, True, False, False),
        # An attempt whose retry connected (the query computes RetryConnected): not billed.
        ({"RetryConnected": 1, "ResponseCode": 503, "SessionEndTime": None},
         {"replaced_by_retry"}, False, False, False),
        ({"RetryConnected": 0, "ResponseCode": 503}, set(), True, False, False),
        ({"CallFlag": 0x10}, set(), True, False, False),  # undocumented bit: kept raw only
        ({"User2ClientType": 1024}, {"response_group"}, True, False, False),
        ({"User1ClientType": 2}, set(), True, True, False),
        ({"User2ClientType": 512}, set(), True, True, False),
        ({"User2ClientType": 256}, set(), True, True, False),
        ({"User2ClientType": 1032}, {"call_park"}, True, False, False),
        ({"ReferredByUri": "sip:bob@example.com"}, {"referred"}, True, False, True),
    ],
    ids=["plain", "rgs-agent", "retried", "replaced-by-retry", "retry-did-not-connect",
         "unknown-bit", "rgs-caller", "av-mcu", "caa",
         "announcement", "call-park", "referred"],
)  # fmt: skip
def test_leg_markers(
    overrides: dict[str, Any],
    flags: set[str],
    billable: bool,
    conference: bool,
    transferred: bool,
) -> None:
    rec = call(gen_row(**overrides))
    assert flags <= set(rec.flags)
    assert ("not_billed" not in rec.flags) is billable
    assert (rec.conference, rec.transferred) == (conference, transferred)
    if overrides.get("CallFlag"):
        assert rec.extra["call_flag"] == str(overrides["CallFlag"])


def test_replaces_links_the_replaced_session() -> None:
    consult = call(gen_row(SessionIdTime="2024-03-01T08:59:00.000", SessionIdSeq=2))
    leg = call(
        inbound(
            ReplaceDialogIdTime="2024-03-01T08:59:00.000",
            ReplaceDialogIdSeq=2,
            ReferredByUri="sip:alice@example.com",
        )
    )
    assert leg.transferred
    assert leg.parent_call_id == consult.record_id
    assert leg.third_party == "alice@example.com"


def test_correlation_id_links_related_legs() -> None:
    first, second = call(gen_row()), call(gen_row(SessionIdSeq=2, CallFlag=1))
    assert first.call_id == second.call_id == "6f9619ff-8b86-d011-b42d-00c04fc964ff"
    assert first.record_id != second.record_id


def test_reread_row_with_late_end_is_the_same_record() -> None:
    open_row, finished = call(gen_row(SessionEndTime=None)), call(gen_row())
    assert open_row.record_id == finished.record_id
    assert open_row.talk_seconds == 0 and finished.talk_seconds == 126
    assert json.loads(finished.raw) == gen_row()


def test_extras_carry_pool_and_delegation() -> None:
    rec = call(gen_row(OnBehalfOfUri="sip:boss@example.com", DiagnosticId=7))
    assert rec.extra["pool"] == "pool01.example.com"
    assert rec.extra["on_behalf_of"] == "sip:boss@example.com"
    assert rec.extra["diagnostic_id"] == "7"
    assert (rec.source_kind, rec.parser_version) == ("lync-cdr", "lync-cdr/1")


def test_audio_with_other_media_is_a_call() -> None:
    for media in (16, 17, 48, 16 | 8 | 1):
        assert call(gen_row(MediaTypes=media)).extra["media_types"] == str(media)


# --- quarantine ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"not json", "not_json"),
        (b"\xff\xfe", "not_json"),
        (b"[1, 2]", "not_a_row"),
        (dump_row(gen_row(SessionIdTime=None)), "missing_key"),
        (dump_row({k: v for k, v in gen_row().items() if k != "SessionIdSeq"}), "missing_key"),
        (dump_row(gen_row(MediaTypes=1)), "not_audio"),
        (dump_row(gen_row(MediaTypes=48 - 16)), "not_audio"),
        (dump_row(gen_row(ResponseCode="200")), "bad_value"),
        (dump_row(gen_row(SessionIdSeq=True)), "bad_value"),
        (dump_row(gen_row(StartedByUri=5)), "bad_value"),
        (dump_row(gen_row(InviteTime="yesterday")), "bad_time"),
        (dump_row(gen_row(SessionEndTime="2024-05-01T09:00:00.000")), "invalid_record"),
        (dump_row(gen_row(StartedByUri="sip:" + "a" * 300 + "@example.com")), "invalid_record"),
        (dump_row({"_unparsed": "CSV error at line 3: bad quote"}), "csv_error"),
    ],
    ids=["text", "binary", "array", "null-time", "no-seq", "im-only", "no-audio-bit",
         "code-as-text", "bool-seq", "uri-number", "bad-time", "too-long", "long-uri", "csv"],
)  # fmt: skip
def test_quarantined_with_reason(data: bytes, reason: str) -> None:
    result = parse(data)
    assert isinstance(result, Quarantined)
    assert (result.reason, result.raw, result.seq) == (reason, data, 7)
    assert result.detail


# --- the capture file: a CSV export of the query's rows -------------------------------------------


def test_csv_export_gives_the_same_units_as_a_poll() -> None:
    names = ["SessionIdTime", "SessionIdSeq", "CorrelationId", "ResponseCode", "StartedByUri",
             "ReferredByUri", "ToGatewayId"]  # fmt: skip
    values = [datetime(2024, 3, 1, 9, 0, 0, 3000), 2, "6F9619FF-8B86-D011-B42D-00C04FC964FF",
              200, "sip:alice@example.com", None, 1]  # fmt: skip
    csv_text = (
        "\ufeff" + ",".join(names) + "\r\n"
        "2024-03-01 09:00:00.003,2,6F9619FF-8B86-D011-B42D-00C04FC964FF,200,"
        "sip:alice@example.com,NULL,1\r\n\r\n"
    )
    assert list(csv_units(csv_text.encode())) == [serialise_row(names, values)]


def test_csv_row_with_wrong_values_is_quarantined_by_column() -> None:
    units = list(csv_units(b"SessionIdTime,SessionIdSeq,MediaTypes\n2024-03-01 09:00,x,16\n"))
    result = parse(units[0])
    assert isinstance(result, Quarantined)
    assert (result.reason, "SessionIdSeq" in result.detail) == ("bad_value", True)


def test_csv_short_and_long_rows_are_kept() -> None:
    units = list(csv_units(b"SessionIdTime,SessionIdSeq\n2024-03-01 09:00\n2024-03-01 09:00,1,9\n"))
    rows = [json.loads(u) for u in units]
    assert rows[0]["_missing_fields"] == ["SessionIdSeq"]
    assert rows[1]["_extra_fields"] == ["9"]


def test_make_parser_reads_a_csv_export_file() -> None:
    kit = make_parser(CTX, {"include_internal": "true"})
    header = ",".join(gen_row())
    line = ",".join("NULL" if v is None else str(v) for v in gen_row().values())
    units = list(kit.file_framer(f"{header}\n{line}\n".encode()))
    results = kit.parser.feed(RawUnit("lync", 1, RECEIVED, units[0]))
    assert isinstance(results[0], ICDR)
    assert results[0].record_id == call(gen_row()).record_id
    assert kit.parser.flush(RECEIVED) == []


def _csv_export(rows: list[dict[str, Any]], null: str) -> bytes:
    header = ",".join(rows[0])
    lines = [",".join(null if v is None else str(v) for v in row.values()) for row in rows]
    return "\n".join([header, *lines, ""]).encode()


@pytest.mark.parametrize(
    ("written", "convention", "transferred"),
    [("", "auto", False), ("", "empty", False), ("NULL", "auto", False), ("NULL", "NULL", False),
     # The wrong convention for the file: every call looks transferred, as the option warns.
     ("NULL", "empty", True)],
)  # fmt: skip
def test_csv_null_conventions(written: str, convention: str, transferred: bool) -> None:
    """psql and bcp write NULL as an empty field: it used to make every call a transfer."""
    kit = make_parser(CTX, {"csv_null": convention})
    data = _csv_export([gen_row(), inbound(SessionIdSeq=2)], written)
    results = [kit.parser.feed(RawUnit("lync", n, RECEIVED, u))[0]
               for n, u in enumerate(kit.file_framer(data), start=1)]  # fmt: skip
    assert all(isinstance(r, ICDR) for r in results)
    assert [r.transferred for r in results if isinstance(r, ICDR)] == [transferred] * 2
    if not transferred:
        expected = [call(gen_row()), call(inbound(SessionIdSeq=2))]
        assert [r.to_dict() | {"raw": ""} for r in results if isinstance(r, ICDR)] == [
            e.to_dict() | {"raw": ""} for e in expected
        ]
    assert kit.notes and f"csv_null={convention}" in kit.notes[0]


def test_parse_command_says_which_null_convention_it_assumed(tmp_path: Any) -> None:
    from click.testing import CliRunner

    from edge_agent.commands.parse import parse_command

    export = tmp_path / "export.csv"
    export.write_bytes(_csv_export([gen_row(), inbound(SessionIdSeq=2)], ""))
    result = CliRunner().invoke(parse_command, ["lync-cdr", str(export)])
    assert result.exit_code == 0, result.stderr
    assert "an empty field and the text NULL are both NULL (csv_null=auto" in result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["transferred"] for r in records] == [False, False]
    bad = CliRunner().invoke(parse_command, ["lync-cdr", "--option", "csv_null=blank", str(export)])
    assert bad.exit_code != 0 and "csv_null" in bad.stderr
