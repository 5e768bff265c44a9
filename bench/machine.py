"""The machine a run was made on, for the report."""

from __future__ import annotations

import functools
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import psutil

from bench import postgres
from bench.processes import REPO


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.cache
def _postmaster(url: str) -> int | None:
    """The main process of the PostgreSQL server of `url` (a backend's parent), when it runs on this machine."""
    import psycopg

    try:
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute("SELECT pg_backend_pid()").fetchone()
            # While the connection is open: once it is closed, its backend exits and has no parent to ask for.
            parent = psutil.Process(int(row[0])).parent() if row else None
    except (psycopg.Error, psutil.Error, ValueError):
        return None
    return parent.pid if parent is not None else None


def postgres_cpu(url: str) -> float | None:
    """CPU seconds so far of the PostgreSQL server of `url`, every process of it (those that ended included), when it
    runs on this machine; else None."""
    pid = _postmaster(url)
    if pid is None:
        return None
    try:
        main = psutil.Process(pid)
        own = main.cpu_times()
        total = own.user + own.system + own.children_user + own.children_system
        children = main.children()
    except psutil.Error:
        return None
    for child in children:
        try:
            times = child.cpu_times()
        except psutil.Error:
            continue  # it ended meanwhile: its time is in the server's children_* once it is reaped
        total += times.user + times.system
    return float(total)


def local_cpu(url: str) -> dict[str, float]:
    """CPU seconds so far of this process ("bench": the load, the sandbox, the bare graph) and of the PostgreSQL
    server of `url` ("postgres", every process of it, when it runs on this machine)."""
    times = psutil.Process(os.getpid()).cpu_times()
    out = {"bench": float(times.user + times.system)}
    server = postgres_cpu(url)
    if server is not None:
        out["postgres"] = server
    return out


def git_revision() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"
    return f"{head} (with uncommitted changes)" if dirty else head


def machine(server_url: str, source: str) -> dict[str, Any]:
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = []
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model(),
        "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "os": platform.platform(),
        "postgres": postgres.version(server_url),
        "postgres_source": source,
        "pg_stat_statements": _statements_loaded(server_url),
        "load_before": load,
        "revision": git_revision(),
    }


def _statements_loaded(url: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute("SHOW shared_preload_libraries").fetchone()
    except psycopg.Error:
        return False
    return bool(row and "pg_stat_statements" in str(row[0]))
