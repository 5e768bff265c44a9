"""Files people share in a message, and the form in which a graph gets them.

At intake (the ack path: no download) `shared_files` keeps a checked description of each file Slack sent with
the message. In the turn job, before the run, the gateway reads each text file's content with the bot token
(`read`, at most `MAX_CONTENT` bytes) and the descriptions, contents included, are saved with the message: a
retried job gives the graph the same input without reading the files again.

The graph gets each file as a dict (`for_graph`): `id`, `name`, `mimetype`, `filetype`, `size`, `url` (Slack's
`url_private`, which needs the bot token), and for a text file `content` (and `truncated: true` when it was
cut), or `error` when its content couldn't be read. In the message content each file is a section
(`section`): a text file's name and content, any other file a line naming it with its type and URL.

The bot token goes only to Slack's file host (https://files.slack.com) or to the host of SLACK_API_URL (a
sandbox); a file whose URL is anywhere else is described, never fetched.
"""

from __future__ import annotations

import codecs
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp

SLACK_FILE_HOST = "files.slack.com"
MAX_FILES = 10
"""Slack shares at most 10 files with one message."""
MAX_CONTENT = 100_000
"""The most of a text file's content (in bytes) a graph gets."""
MAX_REDIRECTS = 3

TEXT_MIMETYPES = frozenset(
    {
        "application/json",
        "application/ld+json",
        "application/x-ndjson",
        "application/xml",
        "application/yaml",
        "application/x-yaml",
        "application/toml",
        "application/javascript",
        "application/x-javascript",
        "application/typescript",
        "application/x-sh",
        "application/x-python",
        "application/sql",
        "application/graphql",
        "application/csv",
    }
)
TEXT_FILETYPES = frozenset(
    {
        "text",
        "markdown",
        "csv",
        "tsv",
        "json",
        "xml",
        "yaml",
        "toml",
        "ini",
        "diff",
        "log",
        "python",
        "javascript",
        "typescript",
        "shell",
        "powershell",
        "sql",
        "html",
        "css",
        "go",
        "rust",
        "java",
        "kotlin",
        "scala",
        "swift",
        "c",
        "cpp",
        "csharp",
        "objc",
        "ruby",
        "php",
        "perl",
        "lua",
        "r",
        "dockerfile",
        "makefile",
        "latex",
    }
)


class FileUnreadable(Exception):
    """Why a file's content couldn't be read (a short, token-free reason)."""


class Transient(FileUnreadable):
    """A fault that may pass (a timeout, a 5xx, a 429): worth another try."""


def _text(value: Any, limit: int = 2000) -> str | None:
    """A string from the payload, as PostgreSQL can store it; None when it is not a non-empty string."""
    if not isinstance(value, str) or not value:
        return None
    return value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")[:limit] or None


def describe(raw: Any) -> dict[str, Any] | None:
    """One file object as Slack sends it, checked: the fields we use, or None when it has no id."""
    if not isinstance(raw, Mapping):
        return None
    file_id = _text(raw.get("id"), 40)
    if not file_id:
        return None
    size = raw.get("size")
    found: dict[str, Any] = {
        "id": file_id,
        "name": _text(raw.get("name"), 255) or _text(raw.get("title"), 255) or file_id,
        "mimetype": _text(raw.get("mimetype"), 255),
        "filetype": _text(raw.get("filetype"), 64),
        "size": size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None,
        "url": _text(raw.get("url_private")),
        "download": _text(raw.get("url_private_download")),
        "mode": _text(raw.get("mode"), 32),
    }
    if raw.get("file_access") == "check_file_info":
        # Slack sent only the id (e.g. in a shared channel): files.info has the rest.
        found["check"] = True
    return found


def shared_files(value: Any) -> list[dict[str, Any]]:
    """The files of a message event (`event["files"]`), checked; [] when there are none."""
    if not isinstance(value, list):
        return []
    described = (describe(raw) for raw in value[:MAX_FILES])
    return [f for f in described if f is not None]


def is_text(file: Mapping[str, Any]) -> bool:
    """Whether a graph gets the file's content: text/*, JSON, CSV, Markdown, code, snippets."""
    mimetype = str(file.get("mimetype") or "").lower()
    if file.get("mode") == "snippet" or mimetype.startswith("text/") or mimetype in TEXT_MIMETYPES:
        return True
    if mimetype.endswith(("+json", "+xml")):
        return True
    return str(file.get("filetype") or "").lower() in TEXT_FILETYPES


def _origin(url: str) -> tuple[str, str, int] | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        return None
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def token_allowed(url: str, api_url: str) -> bool:
    """Whether the bot token may go with a request for `url`: only Slack's file host over https, or the same
    scheme, host and port as SLACK_API_URL (Slack itself, or a sandbox)."""
    origin = _origin(url)
    if origin is None:
        return False
    return origin == ("https", SLACK_FILE_HOST, 443) or origin == _origin(api_url)


def decode(data: bytes, *, complete: bool) -> str:
    """UTF-8 text (undecodable bytes replaced); a cut file loses its last, partial character, not a byte."""
    text = codecs.getincrementaldecoder("utf-8")(errors="replace").decode(data, final=complete)
    return text.replace("\x00", "")


async def read(
    session: aiohttp.ClientSession,
    url: str,
    *,
    token: str,
    api_url: str,
    limit: int = MAX_CONTENT,
    timeout: float = 30.0,  # noqa: ASYNC109
    proxy: str | None = None,
    ssl: Any = True,
    expect_html: bool = False,
) -> tuple[bytes, bool]:
    """The first `limit` bytes of the file at `url`, fetched with the bot token, and whether there was more.

    Redirects are followed only to where the token may go. Raises `FileUnreadable` (or `Transient`)."""
    for _ in range(MAX_REDIRECTS + 1):
        if not token_allowed(url, api_url):
            raise FileUnreadable("its URL is not on Slack's file host, so the bot token was not sent there")
        try:
            async with session.get(
                url,
                headers={"Authorization": f"Bearer {token}"},
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=timeout),
                proxy=proxy,
                ssl=ssl,
            ) as response:
                if response.status in (301, 302, 303, 307, 308) and response.headers.get("Location"):
                    url = urljoin(url, response.headers["Location"])
                    continue
                if response.status == 429 or response.status >= 500:
                    raise Transient(f"Slack answered HTTP {response.status}")
                if response.status != 200:
                    raise FileUnreadable(f"Slack answered HTTP {response.status}")
                if response.content_type == "text/html" and not expect_html:
                    # Slack answers a request it won't serve with its sign-in page.
                    raise FileUnreadable("Slack answered with a web page, not the file (is the files:read scope set?)")
                data = bytearray()
                while len(data) <= limit:
                    chunk = await response.content.read(limit + 1 - len(data))
                    if not chunk:
                        break
                    data += chunk
                return bytes(data[:limit]), len(data) > limit
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Transient(type(exc).__name__) from None
    raise FileUnreadable("Slack redirected too many times")


# The form a graph gets


def for_graph(file: Mapping[str, Any]) -> dict[str, Any]:
    """A file as the graph gets it in `additional_kwargs["files"]` (see the module's documentation)."""
    shown = {k: file.get(k) for k in ("id", "name", "mimetype", "filetype", "size", "url")}
    for key in ("content", "truncated", "error"):
        if key in file:
            shown[key] = file[key]
    return shown


def label(file: Mapping[str, Any]) -> str:
    kind = file.get("mimetype") or file.get("filetype") or "unknown type"
    size = file.get("size")
    return f"{file.get('name')} ({kind}{f', {size} bytes' if isinstance(size, int) else ''})"


def section(file: Mapping[str, Any]) -> str:
    """A file in the message: a text file's name and content, any other its name, type and URL."""
    if isinstance(file.get("content"), str):
        text = f"[File {label(file)}]\n{file['content']}"
        if file.get("truncated"):
            text += f"\n[Cut here: only the first {MAX_CONTENT} bytes of the file are shown.]"
        return text
    where = f": {file['url']}" if file.get("url") else ""
    if file.get("error"):
        return f"[File {label(file)}{where}. Its content couldn't be read: {file['error']}.]"
    return f"[File {label(file)}{where}]"


def content_blocks(text: str, files: Sequence[Mapping[str, Any]]) -> list[str | dict[str, Any]]:
    """A user message's content as LangChain content blocks: the text, then a text block per file."""
    blocks: list[str | dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    return blocks + [{"type": "text", "text": section(f)} for f in files]


def with_sections(text: str, files: Sequence[Mapping[str, Any]]) -> str:
    """The text with a section per file appended (for a graph whose input is text or one field)."""
    return "\n\n".join([text] * bool(text) + [section(f) for f in files])


def user_message(text: str, files: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The user message for a LangGraph Server, as a dict it turns into a HumanMessage."""
    if not files:
        return {"role": "user", "content": text}
    extra = {"files": [for_graph(f) for f in files]}
    return {"role": "user", "content": content_blocks(text, files), "additional_kwargs": extra}
