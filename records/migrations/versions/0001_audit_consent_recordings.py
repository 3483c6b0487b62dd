"""Audit trail, consent evidence and the recording index move out of the live store.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from records.columns import BigId, UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("consultation_id", sa.String(64), nullable=False),
        sa.Column("patient_id", sa.String(64)),
        sa.Column("at", UtcDateTime, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("details", sa.JSON, nullable=False),
    )
    op.create_index("ix_audit_by_consultation", "audit_events", ["consultation_id", "id"])
    op.create_index("ix_audit_count_by_action", "audit_events", ["consultation_id", "action"])
    op.create_index("ix_audit_by_patient", "audit_events", ["patient_id", "id"])
    op.create_table(
        "consent_evidence",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("consultation_id", sa.String(64)),
        sa.Column("patient_id", sa.String(64)),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("given_by", sa.String(128), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("outlet_id", sa.String(128), nullable=False),
        sa.Column("given_at", UtcDateTime, nullable=False),
        sa.Column("withdrawn_at", UtcDateTime),
        sa.Column("withdrawn_by", sa.String(128)),
    )
    op.create_index("ix_consent_by_consultation", "consent_evidence", ["consultation_id", "id"])
    op.create_index("ix_consent_by_patient", "consent_evidence", ["patient_id", "id"])
    op.create_table(
        "recordings",
        sa.Column("recording_id", sa.String(64), primary_key=True),
        sa.Column("consultation_id", sa.String(64), nullable=False),
        sa.Column("document", sa.JSON, nullable=False),
    )
    op.create_index("ix_recordings_consultation_id", "recordings", ["consultation_id"])
    op.create_table(
        "record_keys",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("sealed", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "imports",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("done_at", UtcDateTime, nullable=False),
        sa.Column("summary", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    for table in ("imports", "record_keys", "recordings", "consent_evidence", "audit_events"):
        op.drop_table(table)
