"""A PostgreSQL server of a test's own, that a fault test can stop, kill and start again on the same port.

It runs the binaries the `pgserver` package ships, so it works wherever the project installs. The machine's
shared PostgreSQL is never touched: the server listens on 127.0.0.1 on a port of its own and on a unix socket
inside its folder. The postmaster is started directly (not through `pg_ctl`) as a child of the test process, so
it is always reaped and `kill()` can wait for it; start and stop wait on conditions, never on fixed sleeps.

PostgreSQL refuses to run as root. When the tests run as root the server runs as the system user `pgserver`
(the user the `pgserver` package itself creates for the same reason), created with `useradd` if missing.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import pwd
import random
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.support.database import free_port

SYSTEM_USER = "pgserver"
SUPERUSER = "postgres"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
# pg_ctl's stop modes and the signal each one sends to the postmaster.
STOP_SIGNALS = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}
# A unix socket's path (sun_path) holds at most 107 bytes on Linux, fewer on macOS.
MAX_SOCKET_PATH = 103

# Ports handed out by `quiet_port` in this process, so two servers made before either starts still differ.
_handed_out: set[int] = set()
# Postmasters started here and not yet stopped, to stop at exit even when a test dropped its server object.
_postmasters: set[subprocess.Popen[bytes]] = set()


class PrivatePostgresError(RuntimeError):
    """The private server did not start or stop; the message ends with the tail of its log."""


def bin_dir() -> Path:
    """The folder of PostgreSQL binaries that the installed `pgserver` package ships."""
    spec = importlib.util.find_spec("pgserver")  # not imported: its import sets up locks and runtime folders
    if spec is None or not spec.submodule_search_locations:
        raise PrivatePostgresError("the pgserver package is not installed")
    folder = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (folder / "postgres").exists():
        raise PrivatePostgresError(f"no PostgreSQL binaries in {folder}")
    return folder


class PrivatePostgres:
    """A PostgreSQL server of a test's own, on a free port, that can be stopped and started again.

    The data lives in `folder`, so a start after `stop()` or `kill()` finds the same data on the same port.
    The postmaster is a child of this process: its output goes to `log_file`, and it is always reaped.
    """

    def __init__(self, folder: Path, *, port: int | None = None, database: str = "postgres") -> None:
        self.folder = Path(folder).resolve()
        self._port_chosen = port is None
        self.port = port if port is not None else quiet_port()
        self.database = database
        self.data_dir = self.folder / "data"
        self.socket_dir = self.folder / "socket"
        self.log_file = self.folder / "postgres.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._user = _server_user()

    @property
    def url(self) -> str:
        """The URL of the test's database over TCP (trust authentication, no password)."""
        return self.url_for(self.database)

    def url_for(self, database: str) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    @property
    def pid(self) -> int | None:
        """The postmaster's process id while it runs."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the server and wait until it accepts connections; initialise the data on the first start."""
        if self.running():
            return
        first = not (self.data_dir / "PG_VERSION").exists()
        if first:
            self._initdb()
        self._prepare_socket_dir()
        # On the first start a port we chose may have been taken meanwhile: choose another. Later the port is fixed.
        attempts = 3 if first and self._port_chosen else 1
        for attempt in range(1, attempts + 1):
            try:
                self._launch()
                break
            except PrivatePostgresError:
                if attempt == attempts or "could not bind" not in self.log_tail(10):
                    raise
                self.port = quiet_port()
        if first and self.database != "postgres":
            self._create_database()

    def stop(self, mode: str = "fast") -> None:
        """Shut down as `pg_ctl stop -m <mode>` does and wait until the postmaster has exited; no-op if stopped."""
        if mode not in STOP_SIGNALS:
            raise ValueError(f"mode must be one of {sorted(STOP_SIGNALS)}, not {mode!r}")
        process = self._process
        if process is None or process.poll() is not None:
            self._forget()
            return
        process.send_signal(STOP_SIGNALS[mode])
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            raise PrivatePostgresError(
                f"the server did not stop ({mode}) within {STOP_TIMEOUT}s; killed it\n{self.log_tail()}"
            ) from None
        self._forget()
        _wait_port_closed(self.port)

    def kill(self) -> None:
        """SIGKILL the postmaster and its backends (a crash), then wait until they are gone and the port is closed."""
        process = self._process
        if process is None:
            return
        group = process.pid  # the postmaster leads its own process group; its backends are in it
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT)
        self._forget()
        # Backends still attached to the old shared memory would make the next start refuse to run.
        deadline = time.monotonic() + STOP_TIMEOUT
        while _group_alive(group):
            if time.monotonic() > deadline:
                raise PrivatePostgresError(f"processes of group {group} outlived SIGKILL")
            time.sleep(0.02)
        _wait_port_closed(self.port)

    def close(self) -> None:
        """Stop the server if it runs (killing it if a fast stop fails); safe to call twice."""
        try:
            self.stop("fast")
        except PrivatePostgresError:
            pass
        finally:
            if self.running():
                self.kill()

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> PrivatePostgres:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ---------------------------------------------------------------------------------------

    def _forget(self) -> None:
        if self._process is not None:
            _postmasters.discard(self._process)
        self._process = None

    def _launch(self) -> None:
        """Run the postmaster as our child, its output appended to the log, and wait until it is ready."""
        command = [
            str(bin_dir() / "postgres"),
            "-D",
            str(self.data_dir),
            "-p",
            str(self.port),
            "-h",
            "127.0.0.1",
            "-k",
            self._socket_setting(),
            # No fsync: fast, and safe against a killed server since the OS keeps what was written. Commits still
            # write their WAL before they return, so a `kill()` loses no committed row.
            "-c",
            "fsync=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=50",
        ]
        with self.log_file.open("ab") as log:
            # A session of its own: a Ctrl-C meant for pytest does not reach it, and `kill` hits its whole group.
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.folder,
                env=_server_env(),
                start_new_session=True,
                **self._as_user(),
            )
        _postmasters.add(self._process)
        self._wait_ready()

    def _as_user(self) -> dict[str, Any]:
        """subprocess options that run a PostgreSQL binary as the server's user when we are root."""
        if self._user is None:
            return {}
        return {"user": self._user.pw_uid, "group": self._user.pw_gid, "extra_groups": []}

    def _initdb(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        if self._user is not None:
            _let_user_reach(self.folder)
            _let_everyone_run(bin_dir().parent)
            os.chown(self.data_dir, self._user.pw_uid, self._user.pw_gid)
        command = [
            str(bin_dir() / "initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
        ]
        with self.log_file.open("ab") as log:
            result = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.folder,
                env=_server_env(),
                timeout=120,
                check=False,
                **self._as_user(),
            )
        if result.returncode != 0:
            raise PrivatePostgresError(f"initdb failed ({result.returncode})\n{self.log_tail()}")

    def _prepare_socket_dir(self) -> None:
        self.socket_dir.mkdir(mode=0o755, exist_ok=True)
        if self._user is not None:
            os.chown(self.socket_dir, self._user.pw_uid, self._user.pw_gid)

    def _socket_setting(self) -> str:
        """The socket folder, or '' (no unix socket) when the socket's path would be too long."""
        path = self.socket_dir / f".s.PGSQL.{self.port}"
        return str(self.socket_dir) if len(os.fsencode(path)) <= MAX_SOCKET_PATH else ""

    def _wait_ready(self) -> None:
        """Wait, as `pg_ctl start -w` does, until postmaster.pid says 'ready' or the postmaster exits."""
        assert self._process is not None
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            code = self._process.poll()
            if code is not None:
                self._forget()
                raise PrivatePostgresError(f"the server exited ({code}) while starting\n{self.log_tail()}")
            if self._pid_file_status() == "ready":
                return
            if time.monotonic() > deadline:
                self.kill()
                raise PrivatePostgresError(f"the server was not ready within {START_TIMEOUT}s\n{self.log_tail()}")
            time.sleep(0.02)

    def _pid_file_status(self) -> str | None:
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except (FileNotFoundError, PermissionError):
            return None
        if len(lines) < 8 or self._process is None or lines[0].strip() != str(self._process.pid):
            return None
        return lines[7].strip()

    def _create_database(self) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url_for("postgres"), autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))


def quiet_port() -> int:
    """A free port on 127.0.0.1 below the kernel's ephemeral range.

    `free_port()` gives an ephemeral port: while the server is stopped for a while, another test's `bind(0)` or
    any outgoing connection may be given that very port, and the restart then fails. Below the ephemeral range
    only an explicit bind can take it.
    """
    low = _ephemeral_low()
    first, last = 20000, low - 1
    if last - first < 1000:
        return free_port()
    pick = random.SystemRandom()  # not `random`, which test plugins may seed alike in every worker
    for _ in range(200):
        port = pick.randint(first, last)
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    return free_port()


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 49152  # the IANA range, which macOS and BSDs use


@contextlib.contextmanager
def private_postgres(*, database: str = "postgres", port: int | None = None) -> Iterator[PrivatePostgres]:
    """Start a private server in a fresh temporary folder; stop it and delete the folder however the test ends."""
    # A short path under the system temp folder, so the unix socket's path fits.
    with tempfile.TemporaryDirectory(prefix="lgslack-ppg-", ignore_cleanup_errors=True) as folder:
        server = PrivatePostgres(Path(folder), port=port, database=database)
        try:
            server.start()
            yield server
        finally:
            server.close()


def _server_user() -> pwd.struct_passwd | None:
    """The user to run PostgreSQL as: None (ourselves) unless we are root, then `pgserver`, created if missing."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        pass
    result = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        return pwd.getpwnam(SYSTEM_USER)  # also fine when another process created it meanwhile
    except KeyError:
        raise PrivatePostgresError(
            f"running as root and could not create the user {SYSTEM_USER!r} to run PostgreSQL as: {result.stderr}"
        ) from None


def _server_env() -> dict[str, str]:
    """Our environment without PG* variables, which would point the binaries at another server."""
    return {key: value for key, value in os.environ.items() if not key.startswith("PG")}


def _let_user_reach(folder: Path) -> None:
    """Let other users traverse (not list) `folder` and every folder above it."""
    for path in (folder, *folder.parents):
        mode = path.stat().st_mode
        if not mode & stat.S_IXOTH:
            path.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)


def _let_everyone_run(install: Path) -> None:
    """Let other users read and run pgserver's install tree (some wheels unpack it as owner-only)."""
    _let_user_reach(install)
    for root, dirs, files in os.walk(install):
        for name in [*dirs, *files]:
            path = Path(root) / name
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                continue
            wanted = stat.S_IROTH | (stat.S_IXOTH if stat.S_ISDIR(mode) or mode & stat.S_IXUSR else 0)
            if mode & wanted != wanted:
                path.chmod(stat.S_IMODE(mode) | wanted)


def _group_alive(group: int) -> bool:
    """Whether a process of the process group, other than a zombie, still exists."""
    if not Path("/proc/self/stat").exists():  # no procfs (macOS): zombies count, but launchd reaps them
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        state, process_group = fields[0], int(fields[2])
        if process_group == group and state not in ("Z", "X"):
            return True
    return False


def _wait_port_closed(port: int, timeout: float = STOP_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while _port_open(port):
        if time.monotonic() > deadline:
            raise PrivatePostgresError(f"127.0.0.1:{port} still accepts connections")
        time.sleep(0.02)


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex(("127.0.0.1", port)) == 0


@atexit.register
def _stop_leftovers() -> None:
    """Stop (fast) the servers a test left running, so no postmaster outlives the test run."""
    for process in list(_postmasters):
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGINT)
    for process in list(_postmasters):
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
