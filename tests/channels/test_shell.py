"""``pension shell``: chat with the bot in a terminal, like ``rasa shell``."""

from __future__ import annotations

import builtins

import pytest
from click.testing import CliRunner

from pension import cli


@pytest.fixture
def shell_app(tmp_path, monkeypatch):
    """The real command's settings, from the environment as `pension serve` reads them: its
    own SQLite file with the demo roster, in-memory stores (the NLU model is cached)."""
    environment = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'shell.db'}",
        "AUTO_MIGRATE": "1",
        "LOAD_DEMO_ROSTER": "1",
        "REDIS_URL": "",  # unset: in-memory stores
        "RASA_URL": "",
        "SECRET_KEY": "test",
        "PHOTO_DIR": str(tmp_path / "photos"),
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return environment


def run_shell(*args: str, input: str | None = None):
    return CliRunner().invoke(cli.main, ["shell", *args], input=input, catch_exceptions=False)


def test_shell_chats_with_numbered_buttons_and_stops(shell_app):
    result = run_shell(input="你好\n3\n/stop\n这一行不会被发送\n")

    assert result.exit_code == 0, result.output
    out = result.output
    assert "/stop" in out  # the banner says how to leave
    assert "助手 > 您好！我是养老金认证小助手" in out
    assert "1. 我要认证" in out and "3. 常见问题" in out
    # "3" picked 常见问题: the FAQ menu came back, with its own numbered buttons.
    after_pick = out.split("3. 常见问题", 1)[1]
    assert "助手 > " in after_pick and "1. " in after_pick
    assert out.rstrip().endswith("再见！Goodbye.")


def test_shell_answers_a_question(shell_app):
    result = run_shell("--sender", "shell-faq", input="确认按钮是灰色的怎么办\n")

    assert result.exit_code == 0
    assert "灰色" in result.output.split("您 > ", 2)[1]


def test_shell_exits_on_end_of_input(shell_app):
    result = run_shell("--sender", "shell-eof", input="")

    assert result.exit_code == 0
    assert "再见" in result.output


def test_shell_exits_on_ctrl_c(shell_app, monkeypatch):
    lines = iter(["你好"])

    def fake_input(prompt=""):
        print(prompt, end="")
        try:
            return next(lines)
        except StopIteration:
            raise KeyboardInterrupt from None

    monkeypatch.setattr(builtins, "input", fake_input)
    result = run_shell("--sender", "shell-ctrl-c")

    assert result.exit_code == 0
    assert "您好" in result.output and "再见" in result.output


def test_shell_skips_blank_lines(shell_app):
    result = run_shell("--sender", "shell-blank", input="\n   \n你好\n/stop\n")

    assert result.exit_code == 0
    # Only 你好 was sent: one greeting, no "didn't understand" for the blank lines.
    assert result.output.count("助手 > ") == 1, result.output


def test_shell_rejects_a_malformed_region(shell_app):
    result = CliRunner().invoke(cli.main, ["shell", "--region", "61"], input="")

    assert result.exit_code == 2
    assert "6 digits" in result.output
