"""Files people share in the sandbox: kept with their bytes, described as Slack describes them in a message's
`files`, and served at their `url_private` to the bot token only (401 without a token, 403 with another).

A file is given to the control API as a spec: ``{"name", "content" | "content_base64", "mimetype"?,
"filetype"?, "title"?, "mode"? ("hosted" | "snippet"), "url_private"?, "file_access"?}``. ``url_private``
points the file object somewhere else (to test that the bot never sends its token there); ``file_access:
"check_file_info"`` makes the message carry only the file's id, as Slack sometimes does (files.info has the
rest). Injected faults for the pseudo-method ``files.download`` hit downloads.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import mimetypes
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from aiohttp import web

from bot.dev.sandbox.errors import SlackError
from bot.dev.sandbox.faults import Faults, drop_connection, refusal
from bot.dev.sandbox.workspace import TEAM_DOMAIN, TEAM_ID

DOWNLOAD = "files.download"
FILETYPES = {
    ".txt": "text",
    ".md": "markdown",
    ".csv": "csv",
    ".json": "json",
    ".py": "python",
    ".js": "javascript",
    ".ts": "typescript",
    ".sh": "shell",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".html": "html",
    ".png": "png",
    ".jpg": "jpg",
    ".jpeg": "jpg",
    ".gif": "gif",
    ".pdf": "pdf",
    ".zip": "zip",
}
PRETTY = {"text": "Plain Text", "markdown": "Markdown (raw)", "csv": "CSV", "json": "JSON", "python": "Python"}


@dataclass
class StoredFile:
    id: str
    name: str
    title: str
    mimetype: str
    filetype: str
    mode: str
    user: str
    channel: str
    content: bytes
    created: int = field(default_factory=lambda: int(time.time()))
    url_private: str | None = None
    """Set when the spec pointed the file somewhere else than the sandbox."""
    file_access: str = "visible"


def _content(spec: Mapping[str, Any]) -> bytes:
    if isinstance(spec.get("content_base64"), str):
        try:
            return base64.b64decode(spec["content_base64"], validate=True)
        except (binascii.Error, ValueError):
            raise SlackError("invalid_arguments", detail="content_base64 is not base64") from None
    content = spec.get("content", "")
    if not isinstance(content, str):
        raise SlackError("invalid_arguments", detail="a file's content must be a string")
    return content.encode("utf-8")


class FileStore:
    """The files shared so far, by id, and every download attempt (without tokens)."""

    def __init__(self) -> None:
        self.files: dict[str, StoredFile] = {}
        self.downloads: list[dict[str, Any]] = []
        self._ids = itertools.count(1)

    def add(self, spec: Any, *, user: str, channel: str) -> StoredFile:
        if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str) or not spec["name"]:
            raise SlackError("invalid_arguments", detail="each file needs a name")
        name = spec["name"]
        suffix = PurePosixPath(name).suffix.lower()
        guessed = mimetypes.guess_type(name)[0]
        stored = StoredFile(
            id=f"F0SBX{next(self._ids):05d}",
            name=name,
            title=str(spec.get("title") or name),
            mimetype=str(spec.get("mimetype") or guessed or "application/octet-stream"),
            filetype=str(spec.get("filetype") or FILETYPES.get(suffix) or suffix.lstrip(".") or "binary"),
            mode=str(spec.get("mode") or "hosted"),
            user=user,
            channel=channel,
            content=_content(spec),
            url_private=str(spec["url_private"]) if spec.get("url_private") else None,
            file_access=str(spec.get("file_access") or "visible"),
        )
        self.files[stored.id] = stored
        return stored

    def to_api(self, stored: StoredFile, base_url: str, *, in_event: bool = False) -> dict[str, Any]:
        """The file object as a message (or files.info) carries it; in an event, only the id when Slack would
        make the app ask files.info."""
        if in_event and stored.file_access == "check_file_info":
            return {"id": stored.id, "file_access": "check_file_info"}
        url = stored.url_private or f"{base_url}/files-pri/{TEAM_ID}-{stored.id}/{stored.name}"
        download = url if stored.url_private else f"{base_url}/files-pri/{TEAM_ID}-{stored.id}/download/{stored.name}"
        data: dict[str, Any] = {
            "id": stored.id,
            "created": stored.created,
            "timestamp": stored.created,
            "name": stored.name,
            "title": stored.title,
            "mimetype": stored.mimetype,
            "filetype": stored.filetype,
            "pretty_type": PRETTY.get(stored.filetype, stored.filetype.upper()),
            "user": stored.user,
            "user_team": TEAM_ID,
            "editable": stored.mode == "snippet",
            "size": len(stored.content),
            "mode": stored.mode,
            "is_external": False,
            "external_type": "",
            "is_public": stored.channel.startswith("C"),
            "public_url_shared": False,
            "display_as_bot": False,
            "username": "",
            "url_private": url,
            "url_private_download": download,
            "permalink": f"{base_url}/{TEAM_DOMAIN}/files/{stored.user}/{stored.id}/{stored.name}",
            "permalink_public": f"{base_url}/{TEAM_ID}-{stored.id}",
            "has_rich_preview": False,
            "file_access": "visible",
        }
        if stored.mode == "snippet":
            text = stored.content.decode("utf-8", "replace")
            data["preview"] = text[:300]
            data["lines"] = text.count("\n") + 1
        return data

    def info(self, file_id: str | None, base_url: str) -> dict[str, Any]:
        """files.info's answer."""
        stored = self.files.get(file_id or "")
        if stored is None:
            raise SlackError("file_not_found")
        return {"file": self.to_api(stored, base_url)}

    def reset(self) -> None:
        self.files.clear()
        self.downloads.clear()


class FileServer:
    """``GET /files-pri/<team>-<id>/[download/]<name>``: a file's bytes, for the bot token only."""

    def __init__(self, store: FileStore, faults: Faults, token: str) -> None:
        self.store = store
        self.faults = faults
        self.token = token

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/files-pri/{key}/download/{name}", self.serve),
            web.get("/files-pri/{key}/{name}", self.serve),
        ]

    async def serve(self, request: web.Request) -> web.StreamResponse:
        _, _, file_id = request.match_info["key"].partition("-")
        stored = self.store.files.get(file_id)
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        status = 200
        if stored is None or stored.url_private or stored.name != request.match_info["name"]:
            status = 404
        elif not token:
            status = 401
        elif token != self.token:
            status = 403
        record = {"file": file_id, "path": request.path, "authorized": token == self.token, "status": status}
        self.store.downloads.append({**record, "at": time.time()})
        if status != 200 or stored is None:
            text = {401: "not_authed", 403: "invalid_auth", 404: "file_not_found"}[status]
            return web.Response(status=status, text=text)
        fault = self.faults.take(DOWNLOAD)
        if fault is not None:
            record_fault = self.store.downloads[-1]
            record_fault["fault"] = fault.kind
            if fault.after_store:
                if fault.kind != "timeout_after_store" or not await self.faults.hold(fault.delay):
                    drop_connection(request)
                    return web.Response(status=500)
            else:
                response, _ = refusal(fault)
                record_fault["status"] = response.status
                return response
        return web.Response(
            body=stored.content,
            content_type=stored.mimetype,
            headers={"Content-Disposition": f'attachment; filename="{stored.name}"'},
        )
