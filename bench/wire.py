"""Counting SQL statements on the wire: a TCP proxy in front of PostgreSQL that reads what clients send.

Every statement a client runs reaches the server as one Query message ('Q', the simple protocol) or one Execute
message ('E', the extended protocol psycopg uses for parameters, prepared or not); a round trip ends with a Sync
('S') or a Query. Counting them needs no server setting (pg_stat_statements must be preloaded, which a shared
server may not allow), counts the pool's connection checks, the job queue's and the checkpointer's statements
alike, and, with a proxy per process, says which process sent them. The proxy adds a hop, so it is used only for
counting, never while timing.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections import Counter
from urllib.parse import quote

from psycopg.conninfo import conninfo_to_dict

_SSL_REQUEST = 80877103
_GSS_REQUEST = 80877104


class CountingProxy:
    """Listens on 127.0.0.1 and forwards each connection to the server of `url`; `counts` holds the message types
    clients sent ('Q', 'E', 'S', 'P', …) and `connections` how many connections were opened."""

    def __init__(self, url: str) -> None:
        params = conninfo_to_dict(url)
        self.params = params
        host = str(params.get("host") or "127.0.0.1")
        self.port = int(params.get("port") or 5432)
        self.unix = host.startswith("/")
        self.host = host
        self.counts: Counter[str] = Counter()
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.listen_port = 0

    @property
    def url(self) -> str:
        """The URL of the same database through the proxy (no TLS, so the messages can be read)."""
        user = quote(str(self.params.get("user") or "postgres"))
        password = self.params.get("password")
        auth = f"{user}:{quote(str(password))}" if password else user
        dbname = quote(str(self.params.get("dbname") or "postgres"))
        return f"postgresql://{auth}@127.0.0.1:{self.listen_port}/{dbname}?sslmode=disable"

    def statements(self) -> int:
        return self.counts["Q"] + self.counts["E"]

    def round_trips(self) -> int:
        return self.counts["Q"] + self.counts["S"]

    def snapshot(self) -> tuple[int, int, int]:
        """(statements, round trips, connections) so far."""
        return self.statements(), self.round_trips(), self.connections

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.listen_port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            if self.unix:
                server_reader, server_writer = await asyncio.open_unix_connection(f"{self.host}/.s.PGSQL.{self.port}")
            else:
                server_reader, server_writer = await asyncio.open_connection(self.host, self.port)
        except OSError:
            client_writer.close()
            return
        up = asyncio.create_task(self._client_to_server(client_reader, server_writer))
        down = asyncio.create_task(self._pipe(server_reader, client_writer))
        for task in (up, down):
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        try:
            await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (up, down):
                task.cancel()
            for writer in (client_writer, server_writer):
                with contextlib.suppress(Exception):
                    writer.close()

    async def _client_to_server(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            # Untyped start-up messages first: an SSL/GSS request (answered with one byte) may come before the
            # start-up message itself.
            while True:
                head = await reader.readexactly(8)
                length, code = struct.unpack("!ii", head)
                rest = await reader.readexactly(length - 8)
                writer.write(head + rest)
                await writer.drain()
                if code not in (_SSL_REQUEST, _GSS_REQUEST):
                    break
            while True:
                head = await reader.readexactly(5)
                kind = chr(head[0])
                (length,) = struct.unpack("!i", head[1:])
                body = await reader.readexactly(length - 4)
                self.counts[kind] += 1
                writer.write(head + body)
                await writer.drain()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while True:
                data = await reader.read(65536)
                if not data:
                    return
                writer.write(data)
                await writer.drain()
