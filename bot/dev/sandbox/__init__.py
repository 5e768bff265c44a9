"""A local stand-in for Slack: Web API, signed Events API / interactivity delivery, and a control API.

Start `SlackSandbox`, point the bot's Web API client at ``sb.api_url`` and ``sb.request_url`` at the
bot's Slack endpoint, then act as people with `SandboxClient` (or the sandbox's own Python methods), or
open ``sb.url`` in a browser for a Slack-like page. An app in Socket Mode (`bot.dev.sandbox.socket_mode`) connects with
the app-level token ``xapp-sandbox`` instead of setting a request URL.
"""

from __future__ import annotations

from bot.dev.sandbox.client import SandboxClient, SandboxError, WaitTimeout
from bot.dev.sandbox.delivery import sign
from bot.dev.sandbox.graphs import GraphChooser, GraphOption
from bot.dev.sandbox.server import SlackSandbox
from bot.dev.sandbox.workspace import Workspace

__all__ = [
    "GraphChooser",
    "GraphOption",
    "SandboxClient",
    "SandboxError",
    "SlackSandbox",
    "WaitTimeout",
    "Workspace",
    "sign",
]
