"""Patients known across visits, the visits themselves, versioned reports and family copies.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from records.columns import BigId, UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "patients",
        sa.Column("patient_id", sa.String(64), primary_key=True),
        sa.Column("card_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("card_sealed", sa.LargeBinary, nullable=False),
        sa.Column("name_sealed", sa.LargeBinary, nullable=False),
        sa.Column("birth_year", sa.Integer, nullable=False),
        sa.Column("sex", sa.String(12), nullable=False),
        sa.Column("guardian_name_sealed", sa.LargeBinary),
        sa.Column("guardian_phone_sealed", sa.LargeBinary),
        sa.Column("registered_outlet", sa.String(128), nullable=False),
        sa.Column("registered_at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_patients_registered_outlet", "patients", ["registered_outlet"])
    op.create_table(
        "visits",
        sa.Column("consultation_id", sa.String(64), primary_key=True),
        sa.Column("patient_id", sa.String(64), sa.ForeignKey("patients.patient_id")),
        sa.Column("service", sa.String(64), nullable=False),
        sa.Column("outlet_id", sa.String(128), nullable=False),
        sa.Column("checked_in_at", UtcDateTime, nullable=False),
        sa.Column("started_at", UtcDateTime),
        sa.Column("ended_at", UtcDateTime),
        sa.Column("clinician_id", sa.String(128)),
        sa.Column("clinician_name_sealed", sa.LargeBinary),
        sa.Column("outcome", sa.String(32)),
    )
    op.create_index("ix_visits_by_patient", "visits", ["patient_id", "checked_in_at"])
    op.create_index("ix_visits_by_time", "visits", ["checked_in_at"])
    op.create_index("ix_visits_by_outlet_time", "visits", ["outlet_id", "checked_in_at"])
    op.create_table(
        "reports",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("consultation_id", sa.String(64), nullable=False),
        sa.Column("patient_id", sa.String(64), sa.ForeignKey("patients.patient_id")),
        sa.Column("service", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("body_sealed", sa.LargeBinary, nullable=False),
        sa.Column("follow_up_days", sa.Integer),
        sa.Column("has_referral", sa.Boolean, nullable=False),
        sa.Column("shared_with_family", sa.Boolean, nullable=False),
        sa.Column("clinician_id", sa.String(128), nullable=False),
        sa.Column("clinician_name_sealed", sa.LargeBinary, nullable=False),
        sa.Column("saved_at", UtcDateTime, nullable=False),
        sa.Column("finalised_at", UtcDateTime),
        sa.UniqueConstraint("consultation_id", "version", name="uq_report_version"),
    )
    op.create_index("ix_reports_by_patient", "reports", ["patient_id", "consultation_id"])
    op.create_index("ix_reports_by_final_time", "reports", ["status", "finalised_at"])
    op.create_table(
        "report_shares",
        sa.Column("share_code", sa.String(16), primary_key=True),
        sa.Column("consultation_id", sa.String(64), nullable=False, unique=True),
        sa.Column("pin_sealed", sa.LargeBinary, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("expires_at", UtcDateTime, nullable=False),
        sa.Column("failed_attempts", sa.Integer, nullable=False),
        sa.Column("locked_until", UtcDateTime),
    )


def downgrade() -> None:
    for table in ("report_shares", "reports", "visits", "patients"):
        op.drop_table(table)
