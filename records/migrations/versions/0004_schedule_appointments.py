"""Clinic hours, appointments (one active booking per clinician slot) and reminder attempts.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from records.columns import BigId, UtcDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Bookings that hold their slot (the same text as records.tables.ACTIVE_BOOKING).
_ACTIVE = "status IN ('booked', 'checked_in')"


def upgrade() -> None:
    # The programme figures: a covering index of what they read, one clinician's, and a
    # consultation's final report versions.
    op.create_index(
        "ix_visits_for_figures",
        "visits",
        [
            "checked_in_at",
            "outlet_id",
            "service",
            "clinician_id",
            "patient_id",
            "outcome",
            "started_at",
            "ended_at",
        ],
    )
    op.create_index("ix_visits_by_clinician_time", "visits", ["clinician_id", "checked_in_at"])
    op.create_index(
        "ix_reports_by_consultation_status", "reports", ["consultation_id", "status", "version"]
    )
    op.create_table(
        "clinic_schedules",
        sa.Column("clinician_id", sa.String(128), primary_key=True),
        sa.Column("service", sa.String(64), primary_key=True),
        sa.Column("slot_min", sa.Integer, nullable=False),
        sa.Column("document", sa.JSON, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.Column("updated_by", sa.String(128), nullable=False),
    )
    op.create_index("ix_schedules_by_service", "clinic_schedules", ["service"])
    op.create_table(
        "appointments",
        sa.Column("appointment_id", sa.String(64), primary_key=True),
        sa.Column(
            "patient_id", sa.String(64), sa.ForeignKey("patients.patient_id"), nullable=False
        ),
        sa.Column("service", sa.String(64), nullable=False),
        sa.Column("outlet_id", sa.String(128), nullable=False),
        sa.Column("clinician_id", sa.String(128), nullable=False),
        sa.Column("start_at", UtcDateTime, nullable=False),
        sa.Column("end_at", UtcDateTime, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("booked_by", sa.String(128), nullable=False),
        sa.Column("booked_at", UtcDateTime, nullable=False),
        sa.Column("follow_up_of", sa.String(64)),
        sa.Column("consultation_id", sa.String(64)),
        sa.Column("reminded_at", UtcDateTime),
        sa.Column("changed_at", UtcDateTime, nullable=False),
    )
    op.create_index(
        "uq_appointments_active_slot",
        "appointments",
        ["clinician_id", "start_at"],
        unique=True,
        sqlite_where=sa.text(_ACTIVE),
        postgresql_where=sa.text(_ACTIVE),
    )
    op.create_index("ix_appointments_by_time", "appointments", ["start_at"])
    op.create_index("ix_appointments_by_outlet_time", "appointments", ["outlet_id", "start_at"])
    op.create_index(
        "ix_appointments_by_clinician_time", "appointments", ["clinician_id", "start_at"]
    )
    op.create_index("ix_appointments_by_status_time", "appointments", ["status", "start_at"])
    op.create_index("ix_appointments_by_follow_up", "appointments", ["follow_up_of"])
    op.create_index("ix_appointments_by_patient_time", "appointments", ["patient_id", "start_at"])
    op.create_table(
        "reminder_attempts",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("appointment_id", sa.String(64), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("at", UtcDateTime, nullable=False),
        sa.Column("status", sa.Integer),
        sa.Column("error", sa.String(120)),
    )
    op.create_index(
        "ix_reminder_attempts_by_appointment", "reminder_attempts", ["appointment_id", "id"]
    )


def downgrade() -> None:
    for table in ("reminder_attempts", "appointments", "clinic_schedules"):
        op.drop_table(table)
    op.drop_index("ix_visits_by_clinician_time", "visits")
    op.drop_index("ix_visits_for_figures", "visits")
    op.drop_index("ix_reports_by_consultation_status", "reports")
