"""Alembic environment: runs on the connection handed in by ``Database.upgrade``."""

from alembic import context
from sqlalchemy import create_engine

from services.models import Base

config = context.config
connection = config.attributes.get("connection")


def run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER much
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:
    run(connection)
else:  # `alembic` command line with sqlalchemy.url set
    with create_engine(config.get_main_option("sqlalchemy.url")).begin() as own:
        run(own)
