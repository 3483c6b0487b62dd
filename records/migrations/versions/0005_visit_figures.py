"""The programme figures' facts on the visit row (wait and length in seconds, follow-up due and
kept, report first finalised and referring), filled for the visits already there, and the
indexes the figures read them through.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from records.columns import UtcDateTime
from records.tables import FIGURE_ORDER_INDEXES, FIGURES_READ, VisitRow
from records.visit_facts import facts_update

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_FACTS = ("wait_s", "length_s", "follow_up_due_s", "follow_up_kept")
_REPORT = ("report_finalised_at", "report_refers")
_BEFORE = (
    "visited_before_at",
    "seen_before_at",
    "seen_before_at_outlet",
    "seen_before_at_service",
    "seen_before_at_clinician",
)
_FIGURES = ["checked_in_at", "outlet_id", "service", "clinician_id", "patient_id", "outcome"]
_KEYS = ["outlet_id", "service", "clinician_id"]


# Visits filled per statement: one short statement each, whatever the database holds.
_BATCH = 5000


def upgrade() -> None:
    # Dropped first: the fill does not have to keep it up to date row by row.
    op.drop_index("ix_visits_for_figures", "visits")
    op.add_column("visits", sa.Column("wait_s", sa.Float))
    op.add_column("visits", sa.Column("length_s", sa.Float))
    op.add_column("visits", sa.Column("follow_up_due_s", sa.Float))
    op.add_column(
        "visits",
        sa.Column("follow_up_kept", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.add_column("visits", sa.Column("report_finalised_at", UtcDateTime))
    op.add_column(
        "visits",
        sa.Column("report_refers", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    for column in _BEFORE:
        op.add_column("visits", sa.Column(column, UtcDateTime))
    _fill(op.get_bind())
    op.create_index("ix_visits_for_figures", "visits", list(FIGURES_READ))
    op.create_index(
        "ix_visits_by_follow_up_due", "visits", ["follow_up_due_s", *_KEYS, "follow_up_kept"]
    )
    op.create_index(
        "ix_visits_by_report_final", "visits", ["report_finalised_at", *_KEYS, "report_refers"]
    )
    op.create_index("ix_visits_by_outcome", "visits", ["outcome", *_FIGURES[:4]])
    op.create_index(
        "ix_appointments_for_figures",
        "appointments",
        ["start_at", "status", "outlet_id", "service", "clinician_id"],
    )
    for name, columns in FIGURE_ORDER_INDEXES.items():
        op.create_index(name, "visits", columns)


def _fill(bind: sa.Connection) -> None:
    """Every visit's facts, in batches of consecutive consultation ids."""
    key = VisitRow.consultation_id
    ids = list(bind.scalars(sa.select(key).order_by(key)))
    for first in range(0, len(ids), _BATCH):
        batch = ids[first : first + _BATCH]
        bind.execute(facts_update(bind.dialect.name, key.between(batch[0], batch[-1])))


def downgrade() -> None:
    op.drop_index("ix_appointments_for_figures", "appointments")
    for name in [*FIGURE_ORDER_INDEXES, "ix_visits_by_outcome"]:
        op.drop_index(name, "visits")
    op.drop_index("ix_visits_by_report_final", "visits")
    op.drop_index("ix_visits_by_follow_up_due", "visits")
    op.drop_index("ix_visits_for_figures", "visits")
    op.create_index("ix_visits_for_figures", "visits", [*_FIGURES, "started_at", "ended_at"])
    with op.batch_alter_table("visits") as batch:
        for column in (*_FACTS, *_REPORT, *_BEFORE):
            batch.drop_column(column)
