"""LcsCDR simulator: a faithful Lync / Skype for Business CDR database on PostgreSQL.

Contract:

- ``create_schema`` creates schema ``dbo`` with the LcsCDR tables the driver reads, under their
  real (double-quoted, mixed-case) names with the documented columns, keys and types of the
  chosen generation (formats.md §1.2, §1.10): Lync 2010 (no ClientType, no PurgeSettings),
  Lync 2013 (ClientType, endpoint GUIDs, Processed, PurgeSettings) or Skype for Business
  2015/2019 (plus LastModifiedTime), with either spelling of the replaced-dialog pair. SQL Server
  types map to their PostgreSQL twins: datetime -> timestamp(3), uniqueidentifier -> uuid,
  bit -> boolean, nvarchar -> varchar, varbinary -> bytea.
- ``LcsCdrSimulator.write_scenarios`` writes one realistic session of every kind the driver
  must handle (PSTN in/out, internal, busy, unanswered, invalid, transfers by REFER and by
  Replaces, Response Group with an agent leg, conference dial-in/out, a call retried through
  other gateways until one connects, forwarding to the PSTN by SIP URI and by DID, a failed
  session with a final error and no end time, a mediation-only SIP trunk leg, sessions sharing
  one instant, and an answered call whose end time is written later) and returns the ``ExpectedCall`` facts each
  one should produce. ``complete_pending`` writes the late end times, as the Monitoring service
  does. ``write_bulk`` loads many plain PSTN sessions quickly with COPY (benchmarks).
- It writes only through psycopg to the database it is given, and never to anything else.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import psycopg

DOMAIN = "example.com"
CLIENT_TYPES = {  # ClientVersions rows: (Version, ClientType)
    "lync": ("Lync 15.0 desktop", 4),
    "mediation": ("RTCC/6.0 MediationServer", 1),
    "avmcu": ("RTCC/6.0 AVMCU", 2),
    "caa": ("RTCC/6.0 Conferencing Auto-Attendant", 512),
    "rgs": ("RTCC/6.0 Response Group", 1024),
}


class Generation(StrEnum):
    LYNC_2010 = "2010"
    LYNC_2013 = "2013"
    SFB_2015 = "2015"  # also Skype for Business 2019 and Subscription Edition: same schema


@dataclass(frozen=True, slots=True)
class Variant:
    generation: Generation = Generation.SFB_2015
    replaces_spelling: bool = False  # "ReplacesDialogIdTime" instead of "ReplaceDialogIdTime"

    @property
    def has_client_type(self) -> bool:
        return self.generation is not Generation.LYNC_2010

    @property
    def has_last_modified(self) -> bool:
        return self.generation is Generation.SFB_2015

    @property
    def replace_columns(self) -> tuple[str, str]:
        word = "Replaces" if self.replaces_spelling else "Replace"
        return f"{word}DialogIdTime", f"{word}DialogIdSeq"


def schema_ddl(variant: Variant) -> list[str]:
    """CREATE statements for the dbo tables of one generation."""
    v2013 = variant.has_client_type
    v2015 = variant.has_last_modified
    rtime, rseq = variant.replace_columns
    lmt = ',\n    "LastModifiedTime" timestamp(3) NULL' if v2015 else ""
    sd_version_columns = (
        '"User1EndpointId" uuid NULL, "User2EndpointId" uuid NULL, "Processed" boolean NULL'
        if v2013
        else '"IsUser1IntegratedWithDeskPhone" boolean NULL, '
        '"IsUser2IntegratedWithDeskPhone" boolean NULL'
    )
    users = 'REFERENCES dbo."Users" ("UserId")'
    ddl = [
        "CREATE SCHEMA IF NOT EXISTS dbo",
        'CREATE TABLE dbo."Users" ("UserId" integer PRIMARY KEY, "UserUri" varchar(450) NOT NULL, '
        '"TenantId" integer NULL, "UriTypeId" integer NULL, "NextUpdateTS" timestamp(3) NULL)',
        'CREATE TABLE dbo."Phones" ("PhoneId" integer PRIMARY KEY, "PhoneUri" varchar(450) NOT NULL'
        + (', "NextUpdateTS" timestamp(3) NULL)' if v2013 else ")"),
        'CREATE TABLE dbo."Gateways" ("GatewayId" integer PRIMARY KEY, '
        '"Gateway" varchar(256) NOT NULL)',
        'CREATE TABLE dbo."MediationServers" ("MediationServerId" integer PRIMARY KEY, '
        '"MediationServer" varchar(256) NOT NULL)',
        'CREATE TABLE dbo."Pools" ("PoolId" integer PRIMARY KEY, "PoolFQDN" varchar(256) NOT NULL)',
        'CREATE TABLE dbo."ClientVersions" ("VersionId" integer PRIMARY KEY, '
        '"Version" varchar(256) NOT NULL' + (', "ClientType" integer NULL)' if v2013 else ")"),
        'CREATE TABLE dbo."Dialogs" ("SessionIdTime" timestamp(3) NOT NULL, '
        '"SessionIdSeq" integer NOT NULL, "ExternalChecksum" integer NOT NULL, '
        '"ExternalId" bytea NOT NULL, PRIMARY KEY ("SessionIdTime", "SessionIdSeq"))',
        f"""CREATE TABLE dbo."SessionDetails" (
    "SessionIdTime" timestamp(3) NOT NULL,
    "SessionIdSeq" integer NOT NULL,
    "CorrelationId" uuid NULL,
    "{rtime}" timestamp(3) NULL,
    "{rseq}" integer NULL,
    "User1Id" integer NOT NULL {users},
    "User2Id" integer NULL {users},
    {sd_version_columns},
    "TargetUserId" integer NULL {users},
    "SessionStartedById" integer NULL {users},
    "OnBehalfOfId" integer NULL {users},
    "ReferredById" integer NULL {users},
    "ServerId" integer NULL,
    "PoolId" integer NULL REFERENCES dbo."Pools" ("PoolId"),
    "ContentTypeID" integer NULL,
    "User1ClientVerId" integer NULL REFERENCES dbo."ClientVersions" ("VersionId"),
    "User2ClientVerId" integer NULL REFERENCES dbo."ClientVersions" ("VersionId"),
    "User1EdgeServerid" integer NULL,
    "User2EdgeServerid" integer NULL,
    "IsUser1Internal" boolean NULL,
    "IsUser2Internal" boolean NULL,
    "InviteTime" timestamp(3) NULL,
    "ResponseTime" timestamp(3) NULL,
    "ResponseCode" integer NULL,
    "DiagnosticId" integer NULL,
    "CallPriority" integer NULL,
    "User1MessageCount" integer NULL,
    "User2MessageCount" integer NULL,
    "SessionEndTime" timestamp(3) NULL,
    "MediaTypes" integer NULL,
    "User1Flag" smallint NOT NULL DEFAULT 0,
    "User2Flag" smallint NOT NULL DEFAULT 0,
    "CallFlag" smallint NOT NULL DEFAULT 0{lmt},
    PRIMARY KEY ("SessionIdTime", "SessionIdSeq"),
    FOREIGN KEY ("SessionIdTime", "SessionIdSeq") REFERENCES dbo."Dialogs"
)""",
        f"""CREATE TABLE dbo."VoipDetails" (
    "SessionIdTime" timestamp(3) NOT NULL,
    "SessionIdSeq" integer NOT NULL,
    "FromNumberId" integer NULL REFERENCES dbo."Phones" ("PhoneId"),
    "ConnectedNumberId" integer NULL REFERENCES dbo."Phones" ("PhoneId"),
    "FromMediationServerId" integer NULL REFERENCES dbo."MediationServers",
    "ToMediationServerId" integer NULL REFERENCES dbo."MediationServers",
    "FromGatewayId" integer NULL REFERENCES dbo."Gateways" ("GatewayId"),
    "ToGatewayId" integer NULL REFERENCES dbo."Gateways" ("GatewayId"),
    "DisconnectedbyURIId" integer NULL {users},
    "DisconnectedbyPhoneId" integer NULL REFERENCES dbo."Phones" ("PhoneId"){lmt},
    PRIMARY KEY ("SessionIdTime", "SessionIdSeq"),
    FOREIGN KEY ("SessionIdTime", "SessionIdSeq") REFERENCES dbo."SessionDetails"
)""",
        f"""CREATE TABLE dbo."FocusJoinsAndLeaves" (
    "SessionIdTime" timestamp(3) NOT NULL,
    "SessionIdSeq" integer NOT NULL,
    "DialogSessionIdTime" timestamp(3) NOT NULL,
    "DialogSessionIdSeq" integer NOT NULL,
    "UserId" integer NOT NULL {users},
    "FocusUserInstance" integer NULL,
    "IsUserInternal" boolean NULL,
    "UserRole" integer NULL,
    "UserJoinTime" timestamp(3) NULL,
    "UserLeaveTime" timestamp(3) NULL,
    "ClientVerId" integer NULL REFERENCES dbo."ClientVersions" ("VersionId")"""
        + (',\n    "UserEndpointId" uuid NULL' if v2013 else "")
        + lmt
        + """,
    PRIMARY KEY ("SessionIdTime", "SessionIdSeq", "DialogSessionIdTime", "DialogSessionIdSeq")
)""",
    ]
    if v2013:
        ddl.append(
            'CREATE TABLE dbo."PurgeSettings" ("Id" integer PRIMARY KEY, "EnablePurge" boolean '
            'NOT NULL, "KeepCallDetailForDays" integer NOT NULL, "KeepErrorReportForDays" '
            'integer NOT NULL, "PurgeHour" integer NOT NULL)'
        )
        ddl.append('INSERT INTO dbo."PurgeSettings" VALUES (1, true, 60, 60, 2)')
    return ddl


def create_schema(conninfo: str, variant: Variant) -> None:
    """Create the dbo schema of ``variant`` in an empty PostgreSQL database."""
    with psycopg.connect(conninfo, autocommit=False) as conn:
        for statement in schema_ddl(variant):
            conn.execute(statement)


# --- sessions ----------------------------------------------------------------------------------


@dataclass(slots=True)
class Session:
    """One SessionDetails row and (for calls) its VoipDetails row, by names, not ids."""

    time: datetime
    seq: int = 1
    correlation: uuid.UUID = field(default_factory=uuid.uuid4)
    started_by: str | None = None  # user URIs
    user1: str = ""
    user2: str | None = None
    target: str | None = None
    referred_by: str | None = None
    on_behalf_of: str | None = None
    user1_client: str = "lync"
    user2_client: str = "lync"
    ring: float = 5.0  # seconds from InviteTime to ResponseTime; None response when code is None
    code: int | None = 200
    talk: float | None = 60.0  # seconds from ResponseTime to SessionEndTime; None = not yet
    media: int = 16
    call_flag: int = 0
    replaces: tuple[datetime, int] | None = None
    voip: bool = True
    from_number: str | None = None  # Phones URIs
    connected_number: str | None = None
    from_gateway: str | None = None
    to_gateway: str | None = None
    from_mediation: str | None = None
    to_mediation: str | None = None

    @property
    def key(self) -> tuple[datetime, int]:
        return self.time, self.seq

    @property
    def invite(self) -> datetime:
        return self.time + timedelta(milliseconds=3)

    @property
    def response(self) -> datetime | None:
        return None if self.code is None else _ms(self.invite + timedelta(seconds=self.ring))

    @property
    def end(self) -> datetime | None:
        if self.talk is None:
            return None
        return _ms((self.response or self.invite) + timedelta(seconds=self.talk))


@dataclass(frozen=True, slots=True)
class ExpectedCall:
    """What the driver should make of one session (the simulator's own account of the call)."""

    scenario: str
    session_time: datetime  # naive UTC, as stored
    session_seq: int
    direction: str  # in / out / internal / tandem
    calling: str
    called: str
    answered: bool
    completion: str
    talk_ms: int  # 0 when not answered or not ended yet
    billed: bool  # the leg that carries the cost (answered, not a duplicate leg)
    pstn: bool  # fetched by the default (PSTN-only) query
    conference: bool = False
    transferred: bool = False
    parent: tuple[datetime, int] | None = None
    end_pending: bool = False
    extension: str | None = None  # who the cost belongs to, where the scenario is about it
    ring_seconds: int | None = None
    flags: tuple[str, ...] = ()  # flags the record must carry


def _ms(value: datetime) -> datetime:
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def sip(user: str) -> str:
    return f"sip:{user}@{DOMAIN}"


def phone_user(number: str) -> str:
    """A PSTN party as Lync stores it in Users (a phone URI)."""
    return f"sip:{number}@{DOMAIN};user=phone"


def tel(number: str) -> str:
    return f"tel:{number}"


class LcsCdrSimulator:
    """Writes LcsCDR sessions into a database created by ``create_schema``."""

    def __init__(self, conninfo: str, *, variant: Variant, seed: int = 1) -> None:
        self.conninfo = conninfo
        self.variant = variant
        self._random = random.Random(seed)
        self._ids: dict[tuple[str, str], int] = {}
        self._pending: list[Session] = []

    # -- lookups: the small tables, filled on first use

    def _lookup(self, conn: psycopg.Connection[Any], table: str, value: str) -> int:
        known = self._ids.get((table, value))
        if known is not None:
            return known
        new_id = sum(1 for t, _ in self._ids if t == table) + 1
        self._ids[(table, value)] = new_id
        match table:
            case "Users":
                conn.execute(
                    'INSERT INTO dbo."Users" ("UserId", "UserUri", "TenantId", "UriTypeId") '
                    "VALUES (%s, %s, 1, %s)",
                    (new_id, value, 0 if "user=phone" in value else 1),
                )
            case "Phones":
                conn.execute(
                    'INSERT INTO dbo."Phones" ("PhoneId", "PhoneUri") VALUES (%s, %s)',
                    (new_id, value),
                )
            case "Gateways":
                conn.execute('INSERT INTO dbo."Gateways" VALUES (%s, %s)', (new_id, value))
            case "MediationServers":
                conn.execute('INSERT INTO dbo."MediationServers" VALUES (%s, %s)', (new_id, value))
            case "Pools":
                conn.execute('INSERT INTO dbo."Pools" VALUES (%s, %s)', (new_id, value))
            case "ClientVersions":
                version, client_type = CLIENT_TYPES[value]
                if self.variant.has_client_type:
                    conn.execute(
                        'INSERT INTO dbo."ClientVersions" VALUES (%s, %s, %s)',
                        (new_id, version, client_type),
                    )
                else:
                    conn.execute(
                        'INSERT INTO dbo."ClientVersions" VALUES (%s, %s)', (new_id, version)
                    )
        return new_id

    def _maybe(self, conn: psycopg.Connection[Any], table: str, value: str | None) -> int | None:
        return None if value is None else self._lookup(conn, table, value)

    # -- writing

    def write_sessions(self, sessions: Sequence[Session]) -> None:
        """Insert sessions (Dialogs, SessionDetails, VoipDetails) in one transaction."""
        with psycopg.connect(self.conninfo) as conn:
            for session in sessions:
                self._insert(conn, session)
                if session.talk is None and session.code == 200:
                    self._pending.append(session)

    def _insert(self, conn: psycopg.Connection[Any], s: Session) -> None:
        rtime, rseq = self.variant.replace_columns
        conn.execute(
            'INSERT INTO dbo."Dialogs" VALUES (%s, %s, %s, %s)',
            (s.time, s.seq, self._random.randrange(1 << 30), f"{s.correlation};ft;tt".encode()),
        )
        row: dict[str, Any] = {
            "SessionIdTime": s.time,
            "SessionIdSeq": s.seq,
            "CorrelationId": s.correlation,
            rtime: s.replaces[0] if s.replaces else None,
            rseq: s.replaces[1] if s.replaces else None,
            "User1Id": self._lookup(conn, "Users", s.user1),
            "User2Id": self._maybe(conn, "Users", s.user2),
            "TargetUserId": self._maybe(conn, "Users", s.target),
            "SessionStartedById": self._maybe(conn, "Users", s.started_by),
            "OnBehalfOfId": self._maybe(conn, "Users", s.on_behalf_of),
            "ReferredById": self._maybe(conn, "Users", s.referred_by),
            "PoolId": self._lookup(conn, "Pools", f"pool01.{DOMAIN}"),
            "User1ClientVerId": self._lookup(conn, "ClientVersions", s.user1_client),
            "User2ClientVerId": self._lookup(conn, "ClientVersions", s.user2_client),
            "IsUser1Internal": True,
            "IsUser2Internal": True,
            "InviteTime": s.invite,
            "ResponseTime": s.response,
            "ResponseCode": s.code,
            "DiagnosticId": None if s.code == 200 else 10000 + (s.code or 0),
            "SessionEndTime": s.end,
            "MediaTypes": s.media,
            "CallFlag": s.call_flag,
        }
        if self.variant.has_client_type:
            row["Processed"] = True
        if self.variant.has_last_modified:
            row["LastModifiedTime"] = s.end or s.response or s.invite
        _insert_row(conn, "SessionDetails", row)
        if not s.voip:
            return
        voip: dict[str, Any] = {
            "SessionIdTime": s.time,
            "SessionIdSeq": s.seq,
            "FromNumberId": self._maybe(conn, "Phones", s.from_number),
            "ConnectedNumberId": self._maybe(conn, "Phones", s.connected_number),
            "FromGatewayId": self._maybe(conn, "Gateways", s.from_gateway),
            "ToGatewayId": self._maybe(conn, "Gateways", s.to_gateway),
            "FromMediationServerId": self._maybe(conn, "MediationServers", s.from_mediation),
            "ToMediationServerId": self._maybe(conn, "MediationServers", s.to_mediation),
            "DisconnectedbyURIId": self._maybe(conn, "Users", s.started_by),
        }
        if self.variant.has_last_modified:
            voip["LastModifiedTime"] = row["LastModifiedTime"]
        _insert_row(conn, "VoipDetails", voip)

    def complete_pending(self, *, talk_seconds: float = 240.0) -> list[tuple[datetime, int]]:
        """Write the SessionEndTime of answered sessions that had none (a late Monitoring write)."""
        done: list[tuple[datetime, int]] = []
        with psycopg.connect(self.conninfo) as conn:
            for session in self._pending:
                end = replace(session, talk=talk_seconds).end
                sets = '"SessionEndTime" = %s'
                params: list[Any] = [end]
                if self.variant.has_last_modified:
                    sets += ', "LastModifiedTime" = %s'
                    params.append(end)
                conn.execute(
                    f'UPDATE dbo."SessionDetails" SET {sets} '
                    'WHERE "SessionIdTime" = %s AND "SessionIdSeq" = %s',
                    (*params, session.time, session.seq),
                )
                done.append(session.key)
        self._pending.clear()
        return done

    # -- the scenario set

    def write_scenarios(self, base: datetime) -> list[ExpectedCall]:
        """One session of every kind, from ``base`` (naive UTC) on; returns the expected calls."""
        built = list(_scenarios(_ms(base.replace(tzinfo=None)), self.variant))
        self.write_sessions([session for session, _ in built])
        return [expected for _, expected in built]

    # -- bulk load for benchmarks

    def write_bulk(self, count: int, *, start: datetime, spacing_ms: int = 1000) -> None:
        """``count`` answered PSTN sessions (alternating out and in) loaded with COPY."""
        with psycopg.connect(self.conninfo) as conn:
            alice = self._lookup(conn, "Users", sip("alice"))
            bob = self._lookup(conn, "Users", sip("bob"))
            caller = self._lookup(conn, "Users", phone_user("+442079460099"))
            gateway = self._lookup(conn, "Gateways", f"gw01.{DOMAIN}")
            mediation = self._lookup(conn, "MediationServers", f"med01.{DOMAIN}")
            pool = self._lookup(conn, "Pools", f"pool01.{DOMAIN}")
            client = self._lookup(conn, "ClientVersions", "lync")
            phones = [self._lookup(conn, "Phones", tel(f"+4416329600{n:02d}")) for n in range(100)]
            rtime, rseq = self.variant.replace_columns
            lmt = ', "LastModifiedTime"' if self.variant.has_last_modified else ""
            base = _ms(start.replace(tzinfo=None))
            with conn.cursor() as cur:
                with cur.copy('COPY dbo."Dialogs" FROM STDIN') as copy:
                    for n in range(count):
                        copy.write_row((base + timedelta(milliseconds=n * spacing_ms), 1, n, b""))
                sd_columns = (
                    '"SessionIdTime", "SessionIdSeq", "CorrelationId", "User1Id", "User2Id", '
                    '"TargetUserId", "SessionStartedById", "PoolId", "User1ClientVerId", '
                    '"User2ClientVerId", "InviteTime", "ResponseTime", "ResponseCode", '
                    f'"SessionEndTime", "MediaTypes", "CallFlag", "{rtime}", "{rseq}"{lmt}'
                )
                with cur.copy(f'COPY dbo."SessionDetails" ({sd_columns}) FROM STDIN') as copy:
                    for n in range(count):
                        t = base + timedelta(milliseconds=n * spacing_ms)
                        out = n % 2 == 0
                        end = t + timedelta(seconds=5 + n % 600)
                        row: tuple[Any, ...] = (
                            t, 1, uuid.UUID(int=n), alice if out else caller,
                            None if out else alice, None if out else bob,
                            alice if out else caller, pool, client, client,
                            t, t + timedelta(seconds=4), 200, end, 16, 0, None, None,
                        )  # fmt: skip
                        copy.write_row((*row, end) if lmt else row)
                vd_columns = (
                    '"SessionIdTime", "SessionIdSeq", "FromNumberId", "ConnectedNumberId", '
                    '"FromGatewayId", "ToGatewayId", "FromMediationServerId", '
                    f'"ToMediationServerId"{lmt}'
                )
                with cur.copy(f'COPY dbo."VoipDetails" ({vd_columns}) FROM STDIN') as copy:
                    for n in range(count):
                        t = base + timedelta(milliseconds=n * spacing_ms)
                        phone = phones[n % len(phones)]
                        if n % 2 == 0:
                            vrow: tuple[Any, ...] = (
                                t, 1, None, phone, None, gateway, None, mediation,
                            )  # fmt: skip
                        else:
                            vrow = (t, 1, phone, None, gateway, None, mediation, None)
                        copy.write_row((*vrow, t) if lmt else vrow)


def _insert_row(conn: psycopg.Connection[Any], table: str, row: dict[str, Any]) -> None:
    columns = ", ".join(f'"{name}"' for name in row)
    markers = ", ".join("%s" for _ in row)
    conn.execute(
        f'INSERT INTO dbo."{table}" ({columns}) VALUES ({markers})',
        tuple(row.values()),
    )


def _scenarios(base: datetime, variant: Variant) -> Iterator[tuple[Session, ExpectedCall]]:
    """The scenario set: (session to write, what it means), one minute apart."""
    gw, gw2, med = f"gw01.{DOMAIN}", f"gw02.{DOMAIN}", f"med01.{DOMAIN}"
    clock = iter(base + timedelta(minutes=n) for n in range(1000))

    def out(name: str, number: str, **kw: Any) -> Session:
        return Session(
            time=next(clock), started_by=sip(name), user1=sip(name), user2=phone_user(number),
            target=phone_user(number), connected_number=tel(number), to_gateway=gw,
            to_mediation=med, user2_client="mediation", **kw,
        )  # fmt: skip

    def inbound(number: str, name: str, did: str, **kw: Any) -> Session:
        return Session(
            time=next(clock), started_by=phone_user(number), user1=phone_user(number),
            user2=sip(name), target=phone_user(did), from_number=tel(number), from_gateway=gw,
            from_mediation=med, user1_client="mediation", **kw,
        )  # fmt: skip

    def fact(
        name: str, s: Session, direction: str, calling: str, called: str, **kw: Any
    ) -> tuple[Session, ExpectedCall]:
        answered = s.code == 200
        talk = round(s.talk * 1000) if answered and s.talk is not None else 0
        kw.setdefault("billed", answered)
        kw.setdefault("pstn", direction != "internal")
        completion = {
            200: "answered",
            486: "busy",
            487: "abandoned",
            480: "no_answer",
            404: "invalid",
        }.get(s.code or 0, "failed")
        return s, ExpectedCall(
            scenario=name, session_time=s.time, session_seq=s.seq, direction=direction,
            calling=calling, called=called, answered=answered, completion=completion,
            talk_ms=talk, end_pending=answered and s.talk is None, **kw,
        )  # fmt: skip

    s = out("alice", "+441632960001", ring=7.5, talk=125.5)
    yield fact("pstn_out", s, "out", "alice@example.com", "+441632960001")
    s = inbound("+442079460001", "bob", "+441632960100", talk=61.2)
    yield fact("pstn_in", s, "in", "+442079460001", "bob@example.com")
    s = out("carol", "+441632960002", code=486, talk=0.0)
    yield fact("out_busy", s, "out", "carol@example.com", "+441632960002")
    s = inbound("+442079460002", "dave", "+441632960101", ring=20.0, code=487, talk=0.0)
    yield fact("in_cancelled", s, "in", "+442079460002", "dave@example.com")
    s = out("alice", "+441632960003", ring=30.0, code=480, talk=0.0)
    yield fact("out_no_answer", s, "out", "alice@example.com", "+441632960003")
    s = out("bob", "+441632960999", ring=0.5, code=404, talk=0.0)
    yield fact("out_invalid", s, "out", "bob@example.com", "+441632960999")
    s = out("erin", "+441632960004", media=17, talk=33.3)  # audio + IM
    yield fact("out_audio_im", s, "out", "erin@example.com", "+441632960004")
    s = Session(time=next(clock), started_by=sip("alice"), user1=sip("bob"), user2=sip("alice"),
                target=sip("bob"), talk=300.0)  # fmt: skip
    yield fact("internal", s, "internal", "alice@example.com", "bob@example.com")
    s = Session(time=next(clock), started_by=sip("carol"), user1=sip("carol"), user2=sip("dave"),
                target=sip("dave"), media=48, talk=45.0)  # fmt: skip
    yield fact("internal_video", s, "internal", "carol@example.com", "dave@example.com")
    # An IM conversation: SessionDetails only, never a call.
    im = Session(time=next(clock), started_by=sip("alice"), user1=sip("alice"),
                 user2=sip("bob"), media=1, voip=False)  # fmt: skip
    yield (
        im,
        replace(
            fact("im_only", im, "internal", "", "")[1], pstn=False, billed=False, scenario="im_only"
        ),
    )
    # Forwarded to a mobile: PSTN in, PSTN out.
    s = Session(time=next(clock), started_by=phone_user("+447700900123"),
                user1=phone_user("+447700900123"), user2=phone_user("+447700900456"),
                target=sip("carol"), from_number=tel("+447700900123"),
                connected_number=tel("+447700900456"), from_gateway=gw, to_gateway=gw2,
                from_mediation=med, to_mediation=med, talk=80.0)  # fmt: skip
    yield fact("tandem_forward", s, "tandem", "+447700900123", "+447700900456",
               extension="carol@example.com")  # fmt: skip
    # Blind transfer (REFER): bob takes the call, then transfers it to carol.
    first = inbound("+442079460003", "bob", "+441632960100", talk=30.0)
    yield fact("transfer_first_leg", first, "in", "+442079460003", "bob@example.com")
    second = inbound("+442079460003", "carol", "+441632960100", referred_by=sip("bob"),
                     correlation=first.correlation, talk=90.0)  # fmt: skip
    yield fact("transfer_referred_leg", second, "in", "+442079460003", "carol@example.com",
               transferred=True)  # fmt: skip
    # Attended transfer (Replaces): alice consults dave, then the PSTN party replaces that dialog.
    consult = Session(time=next(clock), started_by=sip("alice"), user1=sip("alice"),
                      user2=sip("dave"), target=sip("dave"), talk=20.0)  # fmt: skip
    yield fact("consultation", consult, "internal", "alice@example.com", "dave@example.com")
    replaced = inbound("+441632960005", "dave", "+441632960005", referred_by=sip("alice"),
                       replaces=consult.key, talk=150.0)  # fmt: skip
    yield fact("transfer_replaces_leg", replaced, "in", "+441632960005", "dave@example.com",
               transferred=True, parent=consult.key)  # fmt: skip
    # Response Group: the caller's leg into the group (billed), the agent's leg (CallFlag 0x02).
    rgs = inbound("+442079460004", "sales-rgs", "+441632960200", user2_client="rgs", ring=0.2,
                  talk=95.0)  # fmt: skip
    yield fact("rgs_caller_leg", rgs, "in", "+442079460004", "sales-rgs@example.com")
    agent = inbound("+442079460004", "erin", "+441632960200", call_flag=2, ring=3.0,
                    correlation=rgs.correlation, on_behalf_of=sip("sales-rgs"),
                    talk=80.0)  # fmt: skip
    yield fact("rgs_agent_leg", agent, "in", "+442079460004", "erin@example.com", billed=False)
    # Conference: a PSTN caller dials in to the auto-attendant; the AV-MCU dials out.
    dial_in = inbound("+447700900789", "conf-aa", "+441632960300", user2_client="caa",
                      talk=600.0)  # fmt: skip
    yield fact("conference_dial_in", dial_in, "in", "+447700900789", "conf-aa@example.com",
               conference=variant.has_client_type)  # fmt: skip
    dial_out = out("av-mcu", "+441632960006", user1_client="avmcu", talk=420.0)
    yield fact("conference_dial_out", dial_out, "out", "av-mcu@example.com", "+441632960006",
               conference=variant.has_client_type)  # fmt: skip
    # A call retried through other gateways (CallFlag 0x01) until one connects: the gateway
    # answers 503 and writes no end time; the retry that connected is the billed call.
    original = out("bob", "+441632960007", code=503, ring=2.0, talk=None)
    yield fact("retry_failed_first", original, "out", "bob@example.com", "+441632960007",
               flags=("replaced_by_retry", "not_billed"))  # fmt: skip
    second = out("bob", "+441632960007", call_flag=1, correlation=original.correlation, code=503,
                 ring=1.0, talk=None)  # fmt: skip
    second.to_gateway = gw2
    yield fact("retry_failed_second", second, "out", "bob@example.com", "+441632960007",
               flags=("retried_session",))  # fmt: skip
    retry = out("bob", "+441632960007", call_flag=1, correlation=original.correlation, talk=42.0)
    retry.to_gateway = f"gw03.{DOMAIN}"
    yield fact("retry_connected", retry, "out", "bob@example.com", "+441632960007",
               flags=("retried_session",))  # fmt: skip
    # Forwarded to a mobile by the user who owns the DID dialled: both User1 and User2 are
    # external numbers; the cost belongs to the DID's owner, never to the mobile.
    s = Session(time=next(clock), started_by=phone_user("+442079460005"),
                user1=phone_user("+442079460005"), user2=phone_user("+447700900457"),
                target=phone_user("+441632960150"), from_number=tel("+442079460005"),
                connected_number=tel("+447700900457"), from_gateway=gw, to_gateway=gw2,
                from_mediation=med, to_mediation=med, talk=95.0)  # fmt: skip
    yield fact("tandem_forward_did", s, "tandem", "+442079460005", "+447700900457",
               extension="+441632960150")  # fmt: skip
    # Failed with a final error and no end time: complete at once, rung for 30 s.
    s = out("carol", "+441632960012", code=480, ring=30.0, talk=None)
    yield fact("failed_no_end", s, "out", "carol@example.com", "+441632960012", ring_seconds=30)
    # A SIP trunk without a gateway name: only the mediation server marks the PSTN side.
    trunk = out("carol", "+441632960008", talk=12.0)
    trunk.to_gateway = None
    yield fact("mediation_only", trunk, "out", "carol@example.com", "+441632960008")
    # Two sessions requested in the same instant: SessionIdSeq 1 and 2.
    same = next(clock)
    for seq, number in ((1, "+441632960009"), (2, "+441632960010")):
        s = out("dave", number, talk=15.0 * seq)
        s.time, s.seq = same, seq
        yield fact(f"same_instant_{seq}", s, "out", "dave@example.com", number)
    # Answered, but the Monitoring service writes the end time later.
    late = out("erin", "+441632960011", talk=None)
    yield fact("late_end", late, "out", "erin@example.com", "+441632960011")


def fill_stand_in(
    conninfo: str, variant: Variant, *, begin: datetime, bulk: int = 0
) -> list[ExpectedCall]:
    """Create the schema in an empty database, write every scenario from ``begin`` and ``bulk``
    plain PSTN sessions right after them; returns what each scenario should become."""
    create_schema(conninfo, variant)
    simulator = LcsCdrSimulator(conninfo, variant=variant)
    expected = simulator.write_scenarios(begin)
    if bulk:
        # Right after the scenarios (their keys never collide): every session ends before now
        # when ``begin`` is an hour or more ago, as a real LcsCDR only holds past calls.
        last = max(call.session_time for call in expected)
        simulator.write_bulk(bulk, start=last + timedelta(minutes=1))
    return expected
