"""face: reference faces (人脸建模), face checks offered in the chat, consents to face processing

Revision ID: 0005_face
Revises: 0004
Create Date: 2026-12-02 01:30:00

Hand-written, plain ``CREATE TABLE`` / ``CREATE INDEX`` for SQLite and PostgreSQL alike.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_face"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reference_faces",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("encoding", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"], ["persons.id"], name=op.f("fk_reference_faces_person_id_persons")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reference_faces")),
        sa.UniqueConstraint("person_id", name=op.f("uq_reference_faces_person_id")),
    )
    op.create_table(
        "face_checks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=32), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("actions", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("evidence", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["person_id"], ["persons.id"], name=op.f("fk_face_checks_person_id_persons")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["channel_accounts.id"],
            name=op.f("fk_face_checks_account_id_channel_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_face_checks")),
        sa.UniqueConstraint("public_id", name=op.f("uq_face_checks_public_id")),
    )
    op.create_index(op.f("ix_face_checks_person_id"), "face_checks", ["person_id"])
    op.create_table(
        "face_consents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("check_id", sa.Integer(), nullable=True),
        sa.Column("wording_version", sa.String(length=16), nullable=False),
        sa.Column("consented_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"], ["persons.id"], name=op.f("fk_face_consents_person_id_persons")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["channel_accounts.id"],
            name=op.f("fk_face_consents_account_id_channel_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["check_id"], ["face_checks.id"], name=op.f("fk_face_consents_check_id_face_checks")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_face_consents")),
    )
    op.create_index(op.f("ix_face_consents_person_id"), "face_consents", ["person_id"])


def downgrade() -> None:
    op.drop_table("face_consents")
    op.drop_table("face_checks")
    op.drop_table("reference_faces")
