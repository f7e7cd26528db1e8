"""Rating: tariff versions, dial plans, route maps, call costs, cost history, unrated queue.

Revision ID: 0002
Revises: 0001
Create Date: 2026-01-02 00:00:00

Written out in full, like 0001; datacenter/store/tables/rating.py defines the same tables and a test
checks that head matches the metadata.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UTC = sa.DateTime(timezone=True)
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _tenant_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id"], ["tenants.tenant_id"], name=f"fk_{table}_tenant_id_tenants",
        ondelete="RESTRICT",
    )  # fmt: skip


def _calls_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id", "record_id"], ["calls.tenant_id", "calls.record_id"],
        name=f"fk_{table}_tenant_id_record_id_calls", ondelete="CASCADE",
    )  # fmt: skip


def upgrade() -> None:
    op.create_table(
        "tariff_versions",
        sa.Column("tenant_id", sa.Integer, nullable=False),
        sa.Column("carrier", sa.String(64), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("valid_from", _UTC, nullable=False),
        sa.Column("valid_to", _UTC, nullable=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("decimals", sa.SmallInteger, nullable=False),
        sa.Column("rounding", sa.String(16), nullable=False),
        sa.Column("band_rule", sa.String(16), nullable=False),
        sa.Column("max_band_spans", sa.Integer, nullable=False),
        sa.Column("calendar", _JSON, nullable=True),
        sa.Column("rates_csv", sa.Text, nullable=False),
        sa.Column("content_sha256", sa.String(64), nullable=False),
        sa.Column("destinations", sa.Integer, nullable=False),
        sa.Column("imported_at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "carrier", "version", name="pk_tariff_versions"),
        _tenant_fk("tariff_versions"),
    )
    for table, document in (("dial_plans", "plan"), ("route_maps", "rules")):
        op.create_table(
            table,
            sa.Column("tenant_id", sa.Integer, nullable=False),
            sa.Column("agent_id", sa.String(64), nullable=False),
            sa.Column(document, _JSON, nullable=False),
            sa.Column("updated_at", _UTC, nullable=False),
            sa.PrimaryKeyConstraint("tenant_id", "agent_id", name=f"pk_{table}"),
            _tenant_fk(table),
        )
    op.create_table(
        "call_costs",
        sa.Column("tenant_id", sa.Integer, nullable=False),
        sa.Column("record_id", sa.String(128), nullable=False),
        sa.Column("cost_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("decimals", sa.SmallInteger, nullable=False),
        sa.Column("number_class", sa.String(16), nullable=False),
        sa.Column("e164", sa.String(16), nullable=False),
        sa.Column("carrier", sa.String(64), nullable=False),
        sa.Column("destination", sa.String(200), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("tariff_version", sa.String(64), nullable=False),
        sa.Column("billed_seconds", sa.Integer, nullable=False),
        sa.Column("bands", _JSON, nullable=False),
        sa.Column("zero_reason", sa.String(32), nullable=True),
        sa.Column("explanation", _JSON, nullable=False),
        sa.Column("engine_version", sa.String(16), nullable=False),
        sa.Column("rated_at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "record_id", name="pk_call_costs"),
        _calls_fk("call_costs"),
    )
    op.create_index(
        "ix_call_costs_tenant_id_carrier_tariff_version",
        "call_costs",
        ["tenant_id", "carrier", "tariff_version"],
    )
    op.create_table(
        "call_cost_history",
        sa.Column("tenant_id", sa.Integer, nullable=False),
        sa.Column("record_id", sa.String(128), nullable=False),
        sa.Column("changed_at", _UTC, nullable=False),
        sa.Column("old_cost_minor", sa.BigInteger, nullable=True),
        sa.Column("old_currency", sa.String(3), nullable=True),
        sa.Column("old_tariff_version", sa.String(64), nullable=True),
        sa.Column("old_explanation", _JSON, nullable=True),
        sa.Column("new_cost_minor", sa.BigInteger, nullable=True),
        sa.Column("new_currency", sa.String(3), nullable=True),
        sa.Column("new_tariff_version", sa.String(64), nullable=True),
        sa.Column("cause", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id", "record_id", "changed_at", name="pk_call_cost_history"
        ),
        _calls_fk("call_cost_history"),
    )
    op.create_table(
        "unrated_calls",
        sa.Column("tenant_id", sa.Integer, nullable=False),
        sa.Column("record_id", sa.String(128), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("explanation", _JSON, nullable=False),
        sa.Column("first_attempt_at", _UTC, nullable=False),
        sa.Column("last_attempt_at", _UTC, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "record_id", name="pk_unrated_calls"),
        _calls_fk("unrated_calls"),
    )
    op.create_index("ix_unrated_calls_tenant_id_reason", "unrated_calls", ["tenant_id", "reason"])


def downgrade() -> None:
    op.drop_index("ix_unrated_calls_tenant_id_reason", table_name="unrated_calls")
    op.drop_index("ix_call_costs_tenant_id_carrier_tariff_version", table_name="call_costs")
    for table in (
        "unrated_calls", "call_cost_history", "call_costs", "route_maps", "dial_plans",
        "tariff_versions",
    ):  # fmt: skip
        op.drop_table(table)
