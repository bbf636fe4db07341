"""Start-up failures: `aibot run` as a subprocess with a setting that cannot work. Each
one ends with exit code 2 and one line on stderr naming the setting to fix, never a
traceback, and never a silent fallback to the console."""
from __future__ import annotations

import socket

import pytest

from tests.test_console_e2e import aibot


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_line(out) -> str:
    """The one stderr line of a refused start; fails if there is more (a traceback, a log)."""
    lines = out.stderr.decode().strip().splitlines()
    assert len(lines) == 1, out.stderr.decode()
    assert lines[0].startswith("aibot: ")
    assert out.stdout == b""  # nothing was served: no console session started instead
    return lines[0]


def test_unreachable_slack_api_names_slack_api_url(env):
    env = {**env, "SLACK_BOT_TOKEN": "xoxb-1-2-abc", "SLACK_APP_TOKEN": "xapp-1-A-1-abc",
           "SLACK_API_URL": f"http://127.0.0.1:{free_port()}/api/"}
    out = aibot("run", env=env, stdin=b"@aibot hi\n", timeout=90)
    assert out.returncode == 2
    line = one_line(out)
    assert "Cannot reach the Slack Web API" in line and "SLACK_API_URL" in line
    assert "xoxb-1-2-abc" not in line


def test_unreachable_discord_api_names_discord_api_url(env):
    env = {**env, "DISCORD_BOT_TOKEN": "MTEx.secret", "DISCORD_API_URL": f"http://127.0.0.1:{free_port()}/api/v10"}
    out = aibot("run", env=env, stdin=b"@aibot hi\n", timeout=90)
    assert out.returncode == 2
    line = one_line(out)
    assert "Cannot reach the Discord API" in line and "DISCORD_API_URL" in line
    assert "MTEx.secret" not in line


def test_http_port_in_use_names_aibot_http_port(env):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = aibot("run", env={**env, "AIBOT_HTTP_PORT": str(port)}, stdin=b"@aibot hi\n")
    assert out.returncode == 2
    line = one_line(out)
    assert f"127.0.0.1:{port}" in line and "already in use" in line and "AIBOT_HTTP_PORT=" in line


@pytest.mark.parametrize("variable, value", [("SLACK_APP_TOKEN", "xapp-1-A-1-abc"), ("SLACK_SIGNING_SECRET", "s3cret")])
def test_slack_half_configured_says_what_else_is_needed_instead_of_falling_back(env, variable, value):
    out = aibot("run", env={**env, variable: value}, stdin=b"@aibot hi\n")
    assert out.returncode == 2
    line = one_line(out)
    assert f"{variable} is set but SLACK_BOT_TOKEN is not" in line and "SLACK_BOT_TOKEN=xoxb-" in line
    assert value not in line
    # the console on purpose is still there
    out = aibot("chat", env={**env, variable: value}, stdin=b"/help\n")
    assert out.returncode == 0 and b"Commands:" in out.stdout


def test_unknown_log_level_is_refused_with_the_allowed_values(env, fake_llm):
    out = aibot("run", env={**env, "AIBOT_LOG_LEVEL": "verbose"}, stdin=b"@aibot hi\n")
    assert out.returncode == 2
    line = one_line(out)
    assert "AIBOT_LOG_LEVEL" in line and "'verbose'" in line
    assert "DEBUG, INFO, WARNING, ERROR, CRITICAL" in line
    assert fake_llm.chat_requests == []

    out = aibot("run", env={**env, "AIBOT_LOG_LEVEL": "info"}, stdin=b"@aibot hi\n")  # any case
    assert out.returncode == 0 and b"Fake answer about" in out.stdout
    assert " INFO " in out.stderr.decode()  # info lines on stderr, none in the chat
    assert all(line.startswith(b"aibot: ") for line in out.stdout.splitlines())
