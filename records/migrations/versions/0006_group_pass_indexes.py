"""A grouping's passes read one index in its group's order: each grouping's (group, wait) order
index is replaced by one that also holds what they count (length, patient, outcome, seen before
in the group, follow-up due and kept, report finalised and referring), built from the visits
already there.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from alembic import op

from records.tables import (
    FIGURE_ORDER_INDEXES,
    GROUP_COLUMNS,
    GROUP_PASS_INDEXES,
    figure_order_index,
)

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for group in GROUP_COLUMNS:
        op.drop_index(figure_order_index(group, "wait_s"), "visits")
    for name, columns in GROUP_PASS_INDEXES.items():
        op.create_index(name, "visits", columns)


def downgrade() -> None:
    for name in GROUP_PASS_INDEXES:
        op.drop_index(name, "visits")
    for group in GROUP_COLUMNS:
        name = figure_order_index(group, "wait_s")
        op.create_index(name, "visits", FIGURE_ORDER_INDEXES[name])
