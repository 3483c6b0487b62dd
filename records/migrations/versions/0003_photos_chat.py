"""Photos taken in a consultation (sealed images), their uploads under way, and chat.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from records.columns import BigId, UtcDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "photos",
        sa.Column("photo_id", sa.String(64), primary_key=True),
        sa.Column("consultation_id", sa.String(64), nullable=False),
        sa.Column("patient_id", sa.String(64), sa.ForeignKey("patients.patient_id")),
        sa.Column("taken_at", UtcDateTime, nullable=False),
        sa.Column("by_subject", sa.String(128), nullable=False),
        sa.Column("by_role", sa.String(16), nullable=False),
        sa.Column("media_type", sa.String(16), nullable=False),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("size_bytes", sa.Integer, nullable=False),
        sa.Column("image_sealed", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_photos_by_consultation", "photos", ["consultation_id", "taken_at"])
    op.create_index("ix_photos_by_patient", "photos", ["patient_id", "taken_at"])
    op.create_table(
        "photo_uploads",
        sa.Column("upload_id", sa.String(64), primary_key=True),
        sa.Column("consultation_id", sa.String(64), nullable=False),
        sa.Column("by_subject", sa.String(128), nullable=False),
        sa.Column("by_role", sa.String(16), nullable=False),
        sa.Column("total_bytes", sa.Integer, nullable=False),
        sa.Column("received", sa.Integer, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("expires_at", UtcDateTime, nullable=False),
        sa.Column("photo_id", sa.String(64)),
    )
    op.create_index(
        "ix_photo_uploads_by_consultation", "photo_uploads", ["consultation_id", "expires_at"]
    )
    op.create_index("ix_photo_uploads_by_expiry", "photo_uploads", ["expires_at"])
    op.create_table(
        "photo_upload_chunks",
        sa.Column(
            "upload_id",
            sa.String(64),
            sa.ForeignKey("photo_uploads.upload_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("offset", sa.Integer, primary_key=True),
        sa.Column("data_sealed", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "chat_messages",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(64), nullable=False, unique=True),
        sa.Column("consultation_id", sa.String(64), nullable=False),
        sa.Column("sent_at", UtcDateTime, nullable=False),
        sa.Column("from_subject", sa.String(128), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("to_subject", sa.String(128)),
        sa.Column("name_sealed", sa.LargeBinary, nullable=False),
        sa.Column("text_sealed", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_chat_by_consultation", "chat_messages", ["consultation_id", "id"])


def downgrade() -> None:
    for table in ("chat_messages", "photo_upload_chunks", "photo_uploads", "photos"):
        op.drop_table(table)
