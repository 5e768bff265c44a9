"""Run the sandbox standalone: ``python -m bot.dev.sandbox --port 3000 --request-url URL``."""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Sequence

from bot.dev.sandbox.server import SlackSandbox


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options (defaults from SLACK_SIGNING_SECRET / SLACK_BOT_TOKEN when set)."""
    parser = argparse.ArgumentParser(prog="python -m bot.dev.sandbox", description="A local stand-in for Slack.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000, help="0 picks a free port")
    parser.add_argument("--request-url", default=None, help="where events and interactions are POSTed")
    parser.add_argument("--signing-secret", default=os.environ.get("SLACK_SIGNING_SECRET", "sandbox-signing-secret"))
    parser.add_argument("--bot-token", default=os.environ.get("SLACK_BOT_TOKEN", "xoxb-sandbox"))
    parser.add_argument(
        "--app-token", default=os.environ.get("SLACK_APP_TOKEN", "xapp-sandbox"), help="app-level token for Socket Mode"
    )
    parser.add_argument(
        "--socket-mode", action="store_true", default=None, help="deliver over Socket Mode even with a request URL"
    )
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    """Start the sandbox and run until cancelled."""
    sandbox = SlackSandbox(
        signing_secret=args.signing_secret,
        bot_token=args.bot_token,
        request_url=args.request_url,
        host=args.host,
        port=args.port,
        app_token=args.app_token,
        socket_mode=args.socket_mode,
    )
    await sandbox.start()
    print(f"Slack sandbox at {sandbox.url}", flush=True)
    print(f"  SLACK_API_URL={sandbox.api_url}", flush=True)
    print(f"  request URL: {sandbox.request_url or '(unset; POST /control/config)'}", flush=True)
    print(f"  Socket Mode: SLACK_APP_TOKEN={sandbox.socket_mode.app_token} (python -m bot socket)", flush=True)
    print("  open the URL in a browser for the Slack-like page", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await sandbox.stop()


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point."""
    try:
        asyncio.run(serve(parse_args(argv)))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
