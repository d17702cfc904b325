"""processed_messages — "this platform message was processed", durable

Revision ID: 0006_processed_messages
Revises: 0005_face
Create Date: 2026-12-02 01:30:00

A Redis restart without persistence must not make an answered WeChat message answered twice:
the channel also claims the message here (primary key = channel + message key).
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_processed_messages"
down_revision = "0005_face"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "processed_messages",
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("msg_key", sa.String(length=256), nullable=False),
        sa.Column("processed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("channel", "msg_key", name=op.f("pk_processed_messages")),
    )
    op.create_index(
        op.f("ix_processed_messages_processed_at"), "processed_messages", ["processed_at"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_processed_messages_processed_at"), table_name="processed_messages")
    op.drop_table("processed_messages")
