"""``pension staff``: add a staff user, unlock, reset a password (services.staff does the work).

The composition root hands in how to open the database (its settings, its schema check)::

    main.add_command(staff_commands(lambda: _database(_settings())))
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import click

from services import staff as staff_service


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return click.prompt("密码 password", hide_input=True, confirmation_prompt=True)


def staff_commands(open_database: Callable) -> click.Group:
    """The ``staff`` command group over the database ``open_database()`` returns."""

    @click.group()
    def staff() -> None:
        """工作台的工作人员账号 — console staff accounts."""

    @staff.command("add")
    @click.argument("username")
    @click.option("--role", type=click.Choice(staff_service.ROLES), required=True)
    @click.option(
        "--region",
        "regions",
        multiple=True,
        required=True,
        help="region-code prefix the user works for (repeatable); 'all' for every region",
    )
    @click.option("--name", "display_name", default=None, help="姓名 shown in the console")
    @click.option("--password-stdin", is_flag=True, help="read the password from standard input")
    def add(username, role, regions, display_name, password_stdin) -> None:
        """Add a staff user: pension staff add NAME --role reviewer --region 45."""
        password = _password(password_stdin)
        try:
            with open_database().session() as session:
                user = staff_service.add_staff(
                    session,
                    username,
                    password,
                    role=role,
                    regions=regions,
                    display_name=display_name,
                )
                shown = "、".join(r or "全部" for r in user.regions)
        except staff_service.StaffError as error:
            raise click.ClickException(str(error)) from error
        click.echo(f"added {username} ({role}; regions {shown})")

    @staff.command("unlock")
    @click.argument("username")
    def unlock(username) -> None:
        """Unlock after three wrong passwords."""
        try:
            with open_database().session() as session:
                staff_service.unlock(session, username, by="cli")
        except staff_service.StaffError as error:
            raise click.ClickException(str(error)) from error
        click.echo(f"unlocked {username}")

    @staff.command("reset-password")
    @click.argument("username")
    @click.option("--password-stdin", is_flag=True, help="read the password from standard input")
    def reset_password(username, password_stdin) -> None:
        """Set a new password (also unlocks; ends every session of the user)."""
        password = _password(password_stdin)
        try:
            with open_database().session() as session:
                staff_service.reset_password(session, username, password, by="cli")
        except staff_service.StaffError as error:
            raise click.ClickException(str(error)) from error
        click.echo(f"password reset for {username}")

    return staff
