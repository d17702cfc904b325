"""lifecycle: the certification year — notices, comparison records, pending verification, public notices

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 22:00:00

Hand-written, plain ``CREATE TABLE`` / ``CREATE INDEX`` for SQLite and PostgreSQL alike.
Chained after the console's 0003.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

STILL_PAID = sa.text("status = 'normal'")


def upgrade() -> None:
    op.create_table(
        "lifecycle_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_lifecycle_days")),
    )
    op.create_table(
        "notices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("route", sa.String(length=8), nullable=False),
        sa.Column("delivered_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"], ["persons.id"], name=op.f("fk_notices_person_id_persons")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notices")),
        sa.UniqueConstraint("person_id", "kind", "due_date", name=op.f("uq_notices_person_id")),
    )
    op.create_index(op.f("ix_notices_person_id"), "notices", ["person_id"])
    op.create_index(op.f("ix_notices_day"), "notices", ["day"])
    op.create_table(
        "comparison_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("record_date", sa.Date(), nullable=False),
        sa.Column("imported_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"], ["persons.id"], name=op.f("fk_comparison_records_person_id_persons")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_comparison_records")),
        sa.UniqueConstraint(
            "person_id",
            "kind",
            "record_date",
            "source",
            name=op.f("uq_comparison_records_person_id"),
        ),
    )
    op.create_index(op.f("ix_comparison_records_person_id"), "comparison_records", ["person_id"])
    op.create_table(
        "pending_verifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("unit_name", sa.String(length=128), nullable=True),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("listed_on", sa.Date(), nullable=False),
        sa.Column("deadline", sa.Date(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("outcome_note", sa.String(length=256), nullable=True),
        sa.Column("returned_on", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["person_id"], ["persons.id"], name=op.f("fk_pending_verifications_person_id_persons")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pending_verifications")),
        sa.UniqueConstraint(
            "person_id", "due_date", name=op.f("uq_pending_verifications_person_id")
        ),
    )
    op.create_index(
        op.f("ix_pending_verifications_person_id"), "pending_verifications", ["person_id"]
    )
    op.create_index(
        op.f("ix_pending_verifications_unit_name"), "pending_verifications", ["unit_name"]
    )
    op.create_table(
        "public_notices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("posted_on", sa.Date(), nullable=False),
        sa.Column("keep_until", sa.Date(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_public_notices")),
        sa.UniqueConstraint("region_code", "year", name=op.f("uq_public_notices_region_code")),
    )
    op.create_table(
        "public_notice_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("notice_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["notice_id"],
            ["public_notices.id"],
            name=op.f("fk_public_notice_entries_notice_id_public_notices"),
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["persons.id"], name=op.f("fk_public_notice_entries_person_id_persons")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_public_notice_entries")),
        sa.UniqueConstraint(
            "notice_id", "person_id", name=op.f("uq_public_notice_entries_notice_id")
        ),
    )
    op.create_index(
        op.f("ix_public_notice_entries_notice_id"), "public_notice_entries", ["notice_id"]
    )
    op.create_index(
        op.f("ix_public_notice_entries_person_id"), "public_notice_entries", ["person_id"]
    )
    op.create_index(
        "ix_persons_cycle",
        "persons",
        ["region_code", "benefit_type", "last_certified_on"],
        postgresql_where=STILL_PAID,
        sqlite_where=STILL_PAID,
    )
    op.create_index(
        op.f("ix_payment_status_changes_effective_on"), "payment_status_changes", ["effective_on"]
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_payment_status_changes_effective_on"), table_name="payment_status_changes"
    )
    op.drop_index("ix_persons_cycle", table_name="persons")
    op.drop_table("public_notice_entries")
    op.drop_table("public_notices")
    op.drop_table("pending_verifications")
    op.drop_table("comparison_records")
    op.drop_table("notices")
    op.drop_table("lifecycle_days")
