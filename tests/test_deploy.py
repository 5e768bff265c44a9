"""The deployment files agree with the code: compose.yaml's services (checked by `docker compose config` where
Docker Compose runs, read as YAML everywhere), the Dockerfile, the Procfile; every variable the bot reads is
read by Settings and documented in the README's tables."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.cli import COMMANDS
from bot.config import load_settings

REPO = Path(__file__).resolve().parents[1]

MODEL_VARIABLES = {"OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_MODEL"}
"""Read by the example graphs' model (`graphs/_model.py`, ChatOpenAI), not by the bot."""


class Recording(dict[str, str]):
    """An environment that remembers every name looked up in it."""

    def __init__(self, values: Mapping[str, str]) -> None:
        super().__init__(values)
        self.read: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self.read.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.read.add(key)
        return super().__contains__(key)


def settings_variables() -> set[str]:
    """Every variable load_settings reads, whatever the command."""
    read: set[str] = set()
    for mode in ("serve", "socket", "worker", "dev", "tool"):
        env = Recording({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s", "SLACK_APP_TOKEN": "xapp-1"})
        load_settings(env, mode)  # type: ignore[arg-type]
        read |= env.read
    return read


def readme_table_variables() -> set[str]:
    """Variables named in the first column of the README's tables."""
    names = set()
    for line in (REPO / "README.md").read_text().splitlines():
        if line.startswith("| `"):
            first = line.split("|")[1]
            names |= set(re.findall(r"`([A-Z][A-Z0-9_]+)`", first))
    return names


def compose() -> dict[str, Any]:
    return yaml.safe_load((REPO / "compose.yaml").read_text())


def environment(service: Mapping[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items() if k != "<<"}


def test_every_variable_settings_reads_is_in_the_readme_table() -> None:
    read = settings_variables()
    assert {"DATABASE_URL", "HOST", "PORT", "LOG_LEVEL", "LOG_FORMAT", "BOT_DATA_DIR"} <= read
    missing = sorted(read - readme_table_variables())
    assert not missing, f"add these to the README's environment table: {missing}"
    assert MODEL_VARIABLES <= readme_table_variables()


def test_the_environment_is_read_only_through_settings() -> None:
    """Outside bot/config.py (and the development extras under bot/dev/: the local Slack, the playground that
    sets up its model; and the example graphs' model), no module reads the environment; cli.py only hands it to
    Settings."""
    allowed = {"bot/config.py"}
    offenders = []
    for path in sorted((REPO / "bot").rglob("*.py")):
        name = str(path.relative_to(REPO))
        if name in allowed or name.startswith("bot/dev/"):
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if re.search(r"\bos\.(environ|getenv)\b|\bgetenv\(", line):
                if name == "bot/cli.py" and "dict(os.environ if environ is None else environ)" in line:
                    continue
                offenders.append(f"{name}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_compose_runs_postgres_the_intake_and_workers() -> None:
    services = compose()["services"]
    assert {"postgres", "bot", "worker"} <= set(services)
    bot, worker, postgres = services["bot"], services["worker"], services["postgres"]

    assert bot["command"] == ["python", "-m", "bot", "serve"]
    assert worker["command"] == ["python", "-m", "bot", "worker"]
    assert {"serve", "worker"} <= set(COMMANDS)
    assert environment(bot)["BOT_WORKERS"] == "0", "the intake runs no jobs: the workers do"
    assert int(environment(worker)["BOT_WORKERS"]) >= 1
    assert bot["ports"] == ["${PORT:-3000}:3000"] and environment(bot)["PORT"] == "3000"

    known = settings_variables() | MODEL_VARIABLES
    pg = environment(postgres)
    for service in (bot, worker):
        env = environment(service)
        assert set(env) <= known, f"not read by Settings: {sorted(set(env) - known)}"
        assert env["DATABASE_URL"] == (
            f"postgresql://{pg['POSTGRES_USER']}:{pg['POSTGRES_PASSWORD']}@postgres:5432/{pg['POSTGRES_DB']}"
        )
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert service["build"] == "."
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert any(volume.endswith(":/var/lib/postgresql/data") for volume in postgres["volumes"])


@pytest.mark.skipif(
    shutil.which("docker") is None
    or subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0,
    reason="Docker Compose is not installed here (the YAML checks above stand in for it)",
)
def test_docker_compose_accepts_the_file(tmp_path: Path) -> None:
    done = subprocess.run(
        ["docker", "compose", "-f", str(REPO / "compose.yaml"), "config", "--quiet"],
        cwd=REPO,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


def test_the_dockerfile_installs_the_package_and_serves() -> None:
    text = (REPO / "Dockerfile").read_text()
    lines = [line.strip() for line in text.splitlines()]
    assert lines[[line.startswith("FROM ") for line in lines].index(True)].startswith("FROM python:3.11")
    assert 'CMD ["python", "-m", "bot", "serve"]' in lines
    assert "COPY bot ./bot" in lines and "COPY graphs ./graphs" in lines
    assert "EXPOSE 3000" in lines and "/healthz" in text
    assert "USER bot" in lines, "the bot runs as a user of its own, not root"
    for name in re.findall(r"^\s+([A-Z][A-Z0-9_]+)=", text, flags=re.MULTILINE):
        if not name.startswith(("PYTHON", "PIP_")):
            assert name in settings_variables(), f"Dockerfile sets {name}, which Settings doesn't read"
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".venv", ".data", ".git", ".env"} <= set(ignored)


def test_the_procfile_runs_the_intake_and_a_worker() -> None:
    entries = dict(line.split(":", 1) for line in (REPO / "Procfile").read_text().splitlines() if line.strip())
    assert entries["web"].strip() == "python -m bot serve"
    assert entries["worker"].strip() == "python -m bot worker"


def test_pyproject_license_is_an_spdx_string() -> None:
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT"
