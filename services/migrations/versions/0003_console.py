"""console: staff sign-in and regions, review claims, home-visit workflow, handoff queue

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 22:00:00

Hand-written, like 0002: ``ADD COLUMN``, ``CREATE TABLE`` and ``CREATE INDEX`` only, so it
runs unchanged on SQLite and PostgreSQL (no foreign keys added to existing tables: SQLite
cannot). Rows that exist already get their random public ids here, in batches.
"""

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

PUBLIC_ID_TABLES = ("persons", "photo_reviews", "home_visit_requests", "handoffs")
BATCH = 5000


def _add_public_id(table: str) -> None:
    op.add_column(table, sa.Column("public_id", sa.String(length=32), nullable=True))
    connection = op.get_bind()
    rows = sa.table(table, sa.column("id"), sa.column("public_id"))
    while True:
        ids = connection.execute(
            sa.select(rows.c.id).where(rows.c.public_id.is_(None)).limit(BATCH)
        ).scalars()
        batch = [{"row_id": i, "value": secrets.token_urlsafe(16)} for i in ids]
        if not batch:
            break
        connection.execute(
            rows.update()
            .where(rows.c.id == sa.bindparam("row_id"))
            .values(public_id=sa.bindparam("value")),
            batch,
        )
    op.create_index(op.f(f"ix_{table}_public_id"), table, ["public_id"], unique=True)


def upgrade() -> None:
    for table in PUBLIC_ID_TABLES:
        _add_public_id(table)

    op.add_column(
        "staff_users", sa.Column("regions", sa.JSON(), nullable=False, server_default="[]")
    )
    op.add_column(
        "staff_users",
        sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0"),
    )
    op.add_column("staff_users", sa.Column("locked_until", sa.DateTime(), nullable=True))
    op.add_column("staff_users", sa.Column("last_login_at", sa.DateTime(), nullable=True))
    op.add_column(
        "staff_users",
        sa.Column("session_token", sa.String(length=64), nullable=False, server_default=""),
    )

    op.add_column("photo_reviews", sa.Column("claimed_by", sa.String(length=64), nullable=True))
    op.add_column("photo_reviews", sa.Column("claimed_at", sa.DateTime(), nullable=True))
    op.add_column("photo_reviews", sa.Column("reject_code", sa.String(length=32), nullable=True))
    op.add_column("photo_reviews", sa.Column("checklist", sa.JSON(), nullable=True))
    op.add_column("photo_reviews", sa.Column("prechecks", sa.JSON(), nullable=True))
    op.create_index(
        "ix_photo_reviews_status_submitted", "photo_reviews", ["status", "submitted_at"]
    )

    op.add_column(
        "home_visit_requests", sa.Column("assigned_to", sa.String(length=64), nullable=True)
    )
    op.add_column("home_visit_requests", sa.Column("outcome", sa.String(length=16), nullable=True))
    op.add_column("home_visit_requests", sa.Column("deceased_on", sa.Date(), nullable=True))
    op.add_column("home_visit_requests", sa.Column("completed_at", sa.DateTime(), nullable=True))

    op.add_column("handoffs", sa.Column("region_code", sa.String(length=6), nullable=True))
    op.add_column("handoffs", sa.Column("taken_by", sa.String(length=64), nullable=True))
    op.add_column("handoffs", sa.Column("taken_at", sa.DateTime(), nullable=True))

    op.create_table(
        "handoff_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("handoff_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("sender", sa.String(length=8), nullable=False),
        sa.Column("author", sa.String(length=64), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["handoff_id"],
            ["handoffs.id"],
            name=op.f("fk_handoff_messages_handoff_id_handoffs"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handoff_messages")),
    )
    op.create_index(
        op.f("ix_handoff_messages_handoff_id"), "handoff_messages", ["handoff_id"], unique=False
    )
    op.create_index("ix_audit_log_actor_at", "audit_log", ["actor", "at"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_actor_at", table_name="audit_log")
    op.drop_index(op.f("ix_handoff_messages_handoff_id"), table_name="handoff_messages")
    op.drop_table("handoff_messages")
    for column in ("taken_at", "taken_by", "region_code"):
        op.drop_column("handoffs", column)
    for column in ("completed_at", "deceased_on", "outcome", "assigned_to"):
        op.drop_column("home_visit_requests", column)
    op.drop_index("ix_photo_reviews_status_submitted", table_name="photo_reviews")
    for column in ("prechecks", "checklist", "reject_code", "claimed_at", "claimed_by"):
        op.drop_column("photo_reviews", column)
    for column in ("session_token", "last_login_at", "locked_until", "failed_logins", "regions"):
        op.drop_column("staff_users", column)
    for table in PUBLIC_ID_TABLES:
        op.drop_index(op.f(f"ix_{table}_public_id"), table_name=table)
        op.drop_column(table, "public_id")
