"""The package's layout: the product apart from the development extras (bot/dev/), pgserver an extra whose
absence is one clear line, py.typed shipped, console scripts declared."""

from __future__ import annotations

import importlib
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.support.database import free_port
from tests.test_cli import REPO, clean_env

MISSING = (
    "error: DATABASE_URL is not set and the embedded PostgreSQL isn't installed: "
    "set DATABASE_URL, or pip install 'slack-langgraph-door[dev]'"
)


def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


@pytest.mark.parametrize("command", ["serve", "worker", "dev"])
def test_without_pgserver_and_database_url_the_bot_says_what_to_do(command: str, tmp_path: Path) -> None:
    """A production install (no `dev` extra) started without DATABASE_URL: one line, exit code 2."""
    code = f"import sys; sys.modules['pgserver'] = None; from bot.cli import main; sys.exit(main([{command!r}]))"
    env = clean_env(
        SLACK_BOT_TOKEN="xoxb-test",
        SLACK_SIGNING_SECRET="secret",
        BOT_DATA_DIR=str(tmp_path / "data"),
        PORT=str(free_port()),
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == MISSING
    assert not (tmp_path / "data" / "postgres").exists()


def test_pgserver_is_the_dev_extra_not_a_dependency() -> None:
    project = pyproject()["project"]
    assert not any(dep.startswith("pgserver") for dep in project["dependencies"])
    assert any(dep.startswith("pgserver==") for dep in project["optional-dependencies"]["dev"])
    makefile = (REPO / "Makefile").read_text()
    assert '-e ".[dev]"' in makefile and '-e ".[dev,test]"' in makefile


def test_the_product_does_not_import_the_development_extras() -> None:
    code = (
        "import sys, bot.runtime, bot.cli, bot.jobs, bot.audit, bot.pending, bot.retention; "
        "print(sorted(m for m in sys.modules if m.startswith('bot.dev') or m == 'pgserver'))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_py_typed_is_shipped() -> None:
    assert (REPO / "bot" / "py.typed").is_file()
    assert "py.typed" in pyproject()["tool"]["setuptools"]["package-data"]["bot"]


def test_console_scripts_are_declared_and_their_targets_exist() -> None:
    scripts = pyproject()["project"]["scripts"]
    assert set(scripts) == {"lgslack", "lgslack-serve", "lgslack-worker", "lgslack-socket", "lgslack-dev"}
    for name, target in scripts.items():
        module, _, attribute = target.partition(":")
        assert callable(getattr(importlib.import_module(module), attribute)), name


def test_a_command_script_runs_its_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """`lgslack-serve --help` is `python -m bot serve --help`."""
    from bot import cli

    monkeypatch.setattr(sys, "argv", ["lgslack-serve", "--help"])
    with pytest.raises(SystemExit) as raised:
        cli.serve()
    assert raised.value.code == 0


def test_an_image_without_bot_dev_says_the_playground_is_not_there(tmp_path: Path) -> None:
    """The Docker image leaves bot/dev/ out: `dev` there is one line, not a traceback."""
    code = "import sys; sys.modules['bot.dev'] = None; from bot.cli import main; sys.exit(main(['dev']))"
    env = clean_env(BOT_DATA_DIR=str(tmp_path / "data"), PORT=str(free_port()))
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == "error: the playground (bot/dev/) is not part of this install: run it from a checkout"
