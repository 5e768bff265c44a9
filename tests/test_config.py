from __future__ import annotations

import subprocess
import sys

import pytest

from bot.config import DEFAULT_GRAPH, load_settings
from bot.errors import ConfigError

BASE = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"}


def test_defaults() -> None:
    settings = load_settings(BASE, "serve")
    assert settings.port == 3000
    assert settings.graph == DEFAULT_GRAPH
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.database_url is None
    assert settings.database_wait == 15.0


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"SLACK_SIGNING_SECRET": "s"}, "SLACK_BOT_TOKEN"),
        ({**BASE, "SLACK_BOT_TOKEN": "xoxp-user"}, "SLACK_BOT_TOKEN"),
        ({"SLACK_BOT_TOKEN": "xoxb-1"}, "SLACK_SIGNING_SECRET"),
        ({**BASE, "PORT": "http"}, "PORT"),
        ({**BASE, "PORT": "70000"}, "PORT"),
        ({**BASE, "BOT_GRAPH": "graphs.assistant"}, "BOT_GRAPH"),
        ({**BASE, "SLACK_API_URL": "slack.com"}, "SLACK_API_URL"),
        ({**BASE, "DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({**BASE, "BOT_DATABASE_WAIT": "0"}, "BOT_DATABASE_WAIT"),
        ({**BASE, "ESCALATION_CHANNEL": "#experts"}, "ESCALATION_CHANNEL"),
        ({**BASE, "LANGGRAPH_URL": "http://127.0.0.1:2024"}, "LANGGRAPH_ASSISTANT_ID"),
    ],
)
def test_a_bad_setting_names_its_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(env, "serve")
    assert caught.value.variable == variable
    assert str(caught.value).startswith(variable)


def test_socket_mode_needs_an_app_token() -> None:
    with pytest.raises(ConfigError, match=r"^SLACK_APP_TOKEN"):
        load_settings({"SLACK_BOT_TOKEN": "xoxb-1"}, "socket")


def test_slack_api_url_gets_its_trailing_slash() -> None:
    assert load_settings({**BASE, "SLACK_API_URL": "http://127.0.0.1:9/api"}, "serve").slack_api_url.endswith("/api/")


def test_the_program_exits_2_with_one_line_and_no_traceback() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bot", "serve"],
        env={"PATH": "/usr/bin:/bin", "SLACK_SIGNING_SECRET": "s"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: SLACK_BOT_TOKEN is not set: copy the Bot User OAuth Token (xoxb-…) from your Slack app's "
        "OAuth & Permissions page"
    ]
