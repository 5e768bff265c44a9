"""Messages whose content is only blocks or only files: what the graph gets, through Slack, in process and on a
LangGraph Server; the bot token goes only to Slack's file host."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any, NotRequired

import aiohttp
import pytest
from aiohttp import web
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph_sdk import get_client
from typing_extensions import TypedDict

from bot.dev.fake_openai import FakeOpenAI, Reply
from bot.records.conversations import derive_thread_id
from bot.slack import files as shared
from bot.slack.listeners import blocks_text
from tests.support.harness import Harness
from tests.support.langgraph_server import REPO, langgraph_dev, scripted_model
from tests.support.slack import GENERAL, containing, visible_text, wait_for_message

TEAM = "T0SANDBOX"
HINT = "Write your message after the mention."
NOTES = "line one\nline two\n"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(8)
RECEIVED: list[Any] = []


# Graphs that keep what they get


class Chat(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def _listen(state: Chat) -> Chat:
    human = state["messages"][-1]
    RECEIVED.append(human)
    return {"messages": [AIMessage(content=f"Read {len(human.additional_kwargs.get('files', []))} file(s).")]}


chat = StateGraph(Chat).add_node("listen", _listen).add_edge(START, "listen").add_edge("listen", END).compile()


class Task(TypedDict):
    request: str
    reply: NotRequired[str]


def _take(state: Task) -> Task:
    RECEIVED.append(state["request"])
    return {"request": state["request"], "reply": "noted"}


task = StateGraph(Task).add_node("take", _take).add_edge(START, "take").add_edge("take", END).compile()


@pytest.fixture(autouse=True)
def _forget() -> Iterator[None]:
    RECEIVED.clear()
    yield
    RECEIVED.clear()


def file_url(sandbox: Any, file_id: str, name: str) -> str:
    return f"{sandbox.url}/files-pri/{TEAM}-{file_id}/{name}"


async def received(slack: Any, count: int = 1) -> list[Any]:
    await slack.wait_for(lambda: len(RECEIVED) >= count or None, timeout=20)
    return list(RECEIVED)


# In process


async def test_a_file_only_reply_in_a_thread_is_a_message_with_its_files(
    harness: Harness, slack: Any, sandbox: Any
) -> None:
    await harness.start("tests.test_files_and_blocks:chat")
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> hello")
    await wait_for_message(slack, GENERAL, root, containing("Read 0 file(s)."))
    files = [
        {"name": "notes.txt", "content": NOTES, "mimetype": "text/plain"},
        {"name": "diagram.png", "content_base64": base64.b64encode(PNG).decode(), "mimetype": "image/png"},
    ]
    await slack.post("U0ALICE", GENERAL, "", thread_ts=root, files=files)
    await wait_for_message(slack, GENERAL, root, containing("Read 2 file(s)."))

    first, human = await received(slack, 2)
    assert type(first) is HumanMessage and first.content == "hello" and first.additional_kwargs == {}
    assert type(human) is HumanMessage
    notes_url, png_url = file_url(sandbox, "F0SBX00001", "notes.txt"), file_url(sandbox, "F0SBX00002", "diagram.png")
    assert human.content == [
        {"type": "text", "text": f"[File notes.txt (text/plain, 18 bytes)]\n{NOTES}"},
        {"type": "text", "text": f"[File diagram.png (image/png, 16 bytes): {png_url}]"},
    ]
    assert human.additional_kwargs == {
        "files": [
            {
                "id": "F0SBX00001",
                "name": "notes.txt",
                "mimetype": "text/plain",
                "filetype": "text",
                "size": 18,
                "url": notes_url,
                "content": NOTES,
            },
            {
                "id": "F0SBX00002",
                "name": "diagram.png",
                "mimetype": "image/png",
                "filetype": "png",
                "size": 16,
                "url": png_url,
            },
        ]
    }
    assert not any(HINT in visible_text(m) for m in await slack.replies(GENERAL, root))
    # Only the text file was read, once, with the bot token, from Slack's download URL.
    downloads = await slack.downloads()
    assert [(d["file"], d["path"], d["authorized"], d["status"]) for d in downloads] == [
        ("F0SBX00001", f"/files-pri/{TEAM}-F0SBX00001/download/notes.txt", True, 200)
    ]


async def test_the_files_are_kept_with_the_message_so_a_retry_gets_the_same_input(
    harness: Harness, slack: Any, sandbox: Any
) -> None:
    bot = await harness.start("tests.test_files_and_blocks:chat")
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> read this", files=[{"name": "a.md", "content": "# Title\n"}])
    await wait_for_message(slack, GENERAL, root, containing("Read 1 file(s)."))
    inbound = await bot.bot.store.get_inbound(team_id=TEAM, channel_id=GENERAL, ts=root)
    assert inbound is not None and inbound.text == "read this"
    (kept,) = inbound.files
    assert kept["content"] == "# Title\n" and kept["read"] is True and kept["mimetype"] == "text/markdown"
    sandbox.files.files.clear()  # the file is gone from Slack: a retried job must not need it
    assert await bot.bot.door.gateway.read_files(inbound.files) == inbound.files
    assert len(await slack.downloads()) == 1


async def test_a_blocks_only_message_is_read_from_its_rich_text(harness: Harness, slack: Any) -> None:
    await harness.start("tests.test_files_and_blocks:chat")
    section = [
        {"type": "user", "user_id": "U0BOT"},
        {"type": "text", "text": " please check "},
        {"type": "channel", "channel_id": "C0EXPERTS"},
        {"type": "text", "text": " with "},
        {"type": "user", "user_id": "U0BOB"},
        {"type": "text", "text": " "},
        {"type": "emoji", "name": "rocket", "unicode": "1f680"},
        {"type": "text", "text": "\nsee "},
        {"type": "link", "url": "https://example.com/a?b=1&c=2", "text": "the doc"},
        {"type": "text", "text": " & the "},
        {"type": "text", "text": "draft", "style": {"bold": True}},
        {"type": "text", "text": ":\n"},
    ]
    blocks = [
        {
            "type": "rich_text",
            "block_id": "b1",
            "elements": [
                {"type": "rich_text_section", "elements": section},
                {
                    "type": "rich_text_list",
                    "style": "ordered",
                    "indent": 0,
                    "elements": [
                        {"type": "rich_text_section", "elements": [{"type": "text", "text": "first"}]},
                        {"type": "rich_text_section", "elements": [{"type": "text", "text": "second"}]},
                    ],
                },
                {"type": "rich_text_quote", "elements": [{"type": "text", "text": "a quote <not a tag>"}]},
                {"type": "rich_text_preformatted", "elements": [{"type": "text", "text": "x = 1 < 2"}]},
            ],
        }
    ]
    root = await slack.post("U0ALICE", GENERAL, "", blocks=blocks)
    await wait_for_message(slack, GENERAL, root, containing("Read 0 file(s)."))
    (human,) = await received(slack)
    assert human.content == (
        "please check <#C0EXPERTS> with <@U0BOB> :rocket:\n"
        "see <https://example.com/a?b=1&c=2|the doc> & the *draft*:\n"
        "1. first\n2. second\n"
        "> a quote <not a tag>\n"
        "```x = 1 < 2```"
    )
    # In the thread, a reply with only blocks (no mention) is a message like any other.
    reply = [{"type": "rich_text", "elements": [{"type": "rich_text_list", "style": "bullet", "elements": [
        {"type": "rich_text_section", "elements": [{"type": "text", "text": "one"}]},
        {"type": "rich_text_section", "elements": [{"type": "emoji", "name": "tada"}]},
    ]}]}]  # fmt: skip
    await slack.post("U0BOB", GENERAL, "", thread_ts=root, blocks=reply)
    _, second = await received(slack, 2)
    assert second.content == "• one\n• :tada:"
    assert not any(HINT in visible_text(m) for m in await slack.replies(GENERAL, root))


def test_blocks_text_reads_what_people_send() -> None:
    assert blocks_text(None) == "" and blocks_text([{"type": "divider"}]) == ""
    nested = {
        "type": "rich_text_list",
        "style": "ordered",
        "indent": 1,
        "offset": 2,
        "elements": [{"type": "rich_text_section", "elements": [{"type": "usergroup", "usergroup_id": "S0EXPERTS"}]}],
    }
    code = {"type": "text", "text": "ls", "style": {"code": True}}
    assert (
        blocks_text(
            [
                {"type": "rich_text", "elements": [{"type": "rich_text_section", "elements": [code]}, nested]},
                {"type": "section", "text": {"type": "mrkdwn", "text": "a section"}},
                {"type": "rich_text", "elements": [{"type": "rich_text_section", "elements": [{"type": "broadcast"}]}]},
            ]
        )
        == "`ls`\n    3. <!subteam^S0EXPERTS>\na section\n<!here>"
    )


def test_malformed_blocks_and_files_are_read_without_failing() -> None:
    odd_list = {"type": "rich_text_list", "indent": "x", "offset": None, "elements": [1, {"elements": "no"}]}
    assert blocks_text([3, {"type": "rich_text", "elements": [odd_list, "s", {"type": "rich_text_quote"}]}]) == (
        "• \n&gt; "
    )
    assert shared.shared_files("x") == [] and shared.shared_files([1, {"id": 5}]) == []
    weird = {"id": "F1", "size": True, "name": "\x00a", "url_private": 7, "file_access": "check_file_info"}
    assert (
        shared.shared_files([weird] * 12)
        == [
            {
                "id": "F1",
                "name": "a",
                "mimetype": None,
                "filetype": None,
                "size": None,
                "url": None,
                "download": None,
                "mode": None,
                "check": True,
            }
        ]
        * shared.MAX_FILES
    )


async def test_the_mention_hint_is_only_for_a_mention_with_nothing_else(harness: Harness, slack: Any) -> None:
    await harness.start("tests.test_files_and_blocks:chat")
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT>")
    await wait_for_message(slack, GENERAL, root, containing(HINT))
    assert RECEIVED == []
    # The same thread: a file alone is a message for the graph, not a reason for the hint.
    await slack.post("U0ALICE", GENERAL, "", thread_ts=root, files=[{"name": "todo.txt", "content": "milk"}])
    await wait_for_message(slack, GENERAL, root, containing("Read 1 file(s)."))
    (human,) = await received(slack)
    assert human.content == [{"type": "text", "text": "[File todo.txt (text/plain, 4 bytes)]\nmilk"}]
    hints = [m for m in await slack.replies(GENERAL, root) if HINT in visible_text(m)]
    assert len(hints) == 1
    # In a DM no mention is needed: a file alone starts a conversation.
    dm = await slack.post("U0ALICE", "D0ALICE", "", files=[{"name": "data.json", "content": '{"a": 1}'}])
    await wait_for_message(slack, "D0ALICE", dm, containing("Read 1 file(s)."))
    _, in_dm = await received(slack, 2)
    assert in_dm.additional_kwargs["files"][0]["content"] == '{"a": 1}'
    assert in_dm.additional_kwargs["files"][0]["mimetype"] == "application/json"
    assert not any(HINT in visible_text(m) for m in await slack.replies("D0ALICE", dm))


async def test_a_text_graph_gets_the_file_sections_after_the_text(harness: Harness, slack: Any, sandbox: Any) -> None:
    await harness.start("tests.test_files_and_blocks:task")
    csv = "city,temp\nLisbon,21\n"
    files = [{"name": "temps.csv", "content": csv}, {"name": "logo.png", "content_base64": "iVBORw0KGgo="}]
    # A file share mentioning the bot comes as a `message` event only (no app_mention): still a mention.
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> summarise these", files=files)
    await wait_for_message(slack, GENERAL, root, containing("noted"))
    (request,) = await received(slack)
    logo = file_url(sandbox, "F0SBX00002", "logo.png")
    assert request == (
        f"summarise these\n\n[File temps.csv (text/csv, 20 bytes)]\n{csv}"
        f"\n\n[File logo.png (image/png, 8 bytes): {logo}]"
    )
    assert [d["type"] for d in await slack.deliveries() if d["ts"] == root] == ["message"]


async def test_a_long_text_file_is_cut_and_says_so(harness: Harness, slack: Any) -> None:
    await harness.start("tests.test_files_and_blocks:chat")
    long = "é" * 60_000  # 120,000 bytes: the cut falls inside a character, which is dropped whole
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> long", files=[{"name": "big.txt", "content": long}])
    await wait_for_message(slack, GENERAL, root, containing("Read 1 file(s)."))
    (human,) = await received(slack)
    (described,) = human.additional_kwargs["files"]
    assert described["content"] == "é" * 50_000 and described["truncated"] is True and described["size"] == 120_000
    assert human.content[1]["text"] == (
        f"[File big.txt (text/plain, 120000 bytes)]\n{'é' * 50_000}\n"
        "[Cut here: only the first 100000 bytes of the file are shown.]"
    )


async def test_a_failed_download_still_runs_the_turn_and_says_why(harness: Harness, slack: Any, sandbox: Any) -> None:
    await harness.start("tests.test_files_and_blocks:chat")
    await slack.fault("files.download", "server_error", times=3)
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> see", files=[{"name": "x.py", "content": "print(1)\n"}])
    await wait_for_message(slack, GENERAL, root, containing("Read 1 file(s)."))
    (human,) = await received(slack)
    url = file_url(sandbox, "F0SBX00001", "x.py")
    assert human.content == [
        {"type": "text", "text": "see"},
        {
            "type": "text",
            "text": f"[File x.py (text/x-python, 9 bytes): {url}. "
            "Its content couldn't be read: Slack answered HTTP 500.]",
        },
    ]
    assert human.additional_kwargs["files"][0]["error"] == "Slack answered HTTP 500"
    assert "content" not in human.additional_kwargs["files"][0]
    assert [d["status"] for d in await slack.downloads()] == [500, 500, 500]


async def test_a_passing_fault_is_tried_again(harness: Harness, slack: Any) -> None:
    await harness.start("tests.test_files_and_blocks:chat")
    await slack.fault("files.download", "ratelimited")
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> see", files=[{"name": "n.txt", "content": "ok"}])
    await wait_for_message(slack, GENERAL, root, containing("Read 1 file(s)."))
    (human,) = await received(slack)
    assert human.additional_kwargs["files"][0]["content"] == "ok"
    assert [d["status"] for d in await slack.downloads()] == [429, 200]


async def test_a_file_slack_sends_as_an_id_is_looked_up(harness: Harness, slack: Any) -> None:
    await harness.start("tests.test_files_and_blocks:chat")
    spec = {"name": "shared.txt", "content": "from another org", "file_access": "check_file_info"}
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> look", files=[spec])
    await wait_for_message(slack, GENERAL, root, containing("Read 1 file(s)."))
    (human,) = await received(slack)
    assert human.content[1]["text"] == "[File shared.txt (text/plain, 16 bytes)]\nfrom another org"
    assert [c["params"]["file"] for c in await slack.calls("files.info")] == ["F0SBX00001"]


# The bot token goes nowhere but Slack


@pytest.fixture
async def foreign() -> AsyncIterator[tuple[str, list[dict[str, str]]]]:
    """A server that is not Slack, recording every request it gets (with its headers)."""
    seen: list[dict[str, str]] = []

    async def record(request: web.Request) -> web.Response:
        seen.append({"path": request.path, **dict(request.headers)})
        return web.Response(text="stolen")

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", record)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        await runner.cleanup()


async def test_a_file_url_elsewhere_is_described_and_never_fetched(
    harness: Harness, slack: Any, foreign: tuple[str, list[dict[str, str]]]
) -> None:
    url, seen = foreign
    await harness.start("tests.test_files_and_blocks:chat")
    spec = {"name": "evil.txt", "content": "x", "url_private": f"{url}/files-pri/T-F/evil.txt"}
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> open it", files=[spec])
    await wait_for_message(slack, GENERAL, root, containing("Read 1 file(s)."))
    (human,) = await received(slack)
    note = "its URL is not on Slack's file host, so the bot token was not sent there"
    assert human.content[1]["text"] == (
        f"[File evil.txt (text/plain, 1 bytes): {url}/files-pri/T-F/evil.txt. Its content couldn't be read: {note}.]"
    )
    assert seen == []


async def test_a_redirect_away_from_slack_is_not_followed(foreign: tuple[str, list[dict[str, str]]]) -> None:
    url, seen = foreign

    async def bounce(request: web.Request) -> web.Response:
        assert request.headers["Authorization"] == "Bearer xoxb-test"
        raise web.HTTPFound(f"{url}/elsewhere")

    app = web.Application()
    app.router.add_get("/files-pri/{tail:.*}", bounce)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    api = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with aiohttp.ClientSession() as session:
            with pytest.raises(shared.FileUnreadable, match="not on Slack's file host"):
                await shared.read(session, f"{api}/files-pri/T-F/a.txt", token="xoxb-test", api_url=f"{api}/api/")
    finally:
        await runner.cleanup()
    assert seen == []


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://files.slack.com/files-pri/T-F/a.txt", True),
        ("https://FILES.slack.com:443/files-pri/T-F/a.txt", True),
        ("http://files.slack.com/files-pri/T-F/a.txt", False),
        ("https://files.slack.com:8443/a.txt", False),
        ("https://files.slack.com.evil.com/a.txt", False),
        ("https://files.slack.com@evil.com/a.txt", False),
        ("https://evil.com/files.slack.com/a.txt", False),
        ("https://slack.com/api/../files", True),
        ("http://127.0.0.1:9/a.txt", False),
        ("file:///etc/passwd", False),
        ("not a url", False),
    ],
)
def test_the_token_goes_only_to_slack(url: str, allowed: bool) -> None:
    assert shared.token_allowed(url, "https://slack.com/api/") is allowed


async def test_the_sandbox_serves_files_to_the_bot_token_only(sandbox: Any, slack: Any) -> None:
    ts = await slack.post("U0ALICE", GENERAL, "", files=[{"name": "a.txt", "content": "secret"}])
    (file,) = (await slack.message(GENERAL, ts))["files"]
    async with aiohttp.ClientSession() as session:
        for headers, status in (({}, 401), ({"Authorization": "Bearer xoxb-other"}, 403)):
            async with session.get(file["url_private"], headers=headers) as response:
                assert response.status == status and "secret" not in await response.text()
        async with session.get(file["url_private"], headers={"Authorization": "Bearer xoxb-sandbox"}) as response:
            assert response.status == 200 and await response.text() == "secret"
    assert [d["authorized"] for d in await slack.downloads()] == [False, False, True]


# What reaches the model


async def test_the_model_gets_the_text_and_the_files_as_content_parts(
    harness: Harness, slack: Any, openai: Any
) -> None:
    openai.reply(Reply(content="It lists two lines."))
    await harness.start("graphs.assistant:graph")
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> what is in it?", files=[{"name": "n.txt", "content": NOTES}])
    await wait_for_message(slack, GENERAL, root, containing("It lists two lines."))
    (request,) = openai.requests
    assert request.messages[-1] == {
        "role": "user",
        "content": [
            {"type": "text", "text": "what is in it?"},
            {"type": "text", "text": f"[File n.txt (text/plain, 18 bytes)]\n{NOTES}"},
        ],
    }


# On a LangGraph Server


@pytest.fixture(scope="module")
def model() -> Iterator[FakeOpenAI]:
    yield from scripted_model()


@pytest.fixture(scope="module")
def langgraph_server(model: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from langgraph_dev(REPO / "langgraph.json", model, tmp_path_factory.mktemp("langgraph"))


async def test_files_reach_a_graph_on_a_langgraph_server(
    harness: Harness, slack: Any, sandbox: Any, langgraph_server: str, model: FakeOpenAI
) -> None:
    model.clear()
    model.reply(Reply(content="Two lines and a picture."))
    remote = {"LANGGRAPH_URL": langgraph_server, "LANGGRAPH_ASSISTANT_ID": "assistant"}
    await harness.start("graphs.assistant:graph", environ=harness.environ("graphs.assistant:graph", **remote))
    files = [{"name": "n.txt", "content": NOTES}, {"name": "p.png", "content_base64": base64.b64encode(PNG).decode()}]
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> describe", files=files)
    await wait_for_message(slack, GENERAL, root, containing("Two lines and a picture."))
    png = file_url(sandbox, "F0SBX00002", "p.png")
    content = [
        {"type": "text", "text": "describe"},
        {"type": "text", "text": f"[File n.txt (text/plain, 18 bytes)]\n{NOTES}"},
        {"type": "text", "text": f"[File p.png (image/png, 16 bytes): {png}]"},
    ]
    (request,) = model.requests
    assert request.messages[-1] == {"role": "user", "content": content}
    state = await get_client(url=langgraph_server).threads.get_state(derive_thread_id(TEAM, GENERAL, root))
    human = state["values"]["messages"][0]
    assert human["type"] == "human" and human["content"] == content
    assert [(f["name"], f.get("content")) for f in human["additional_kwargs"]["files"]] == [
        ("n.txt", NOTES),
        ("p.png", None),
    ]


async def test_a_text_graph_on_a_langgraph_server_gets_the_sections(
    harness: Harness, slack: Any, langgraph_server: str, model: FakeOpenAI
) -> None:
    remote = {"LANGGRAPH_URL": langgraph_server, "LANGGRAPH_ASSISTANT_ID": "feedback_workflow"}
    await harness.start("graphs.assistant:graph", environ=harness.environ("graphs.assistant:graph", **remote))
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> check", files=[{"name": "n.txt", "content": "ok"}])
    await wait_for_message(slack, GENERAL, root, containing("Please provide feedback: check"))
    state = await get_client(url=langgraph_server).threads.get_state(derive_thread_id(TEAM, GENERAL, root))
    (pending,) = state["interrupts"]
    assert pending["value"] == "Please provide feedback: check\n\n[File n.txt (text/plain, 2 bytes)]\nok bar"


async def test_a_file_only_reply_answers_the_open_question_with_the_file(harness: Harness, slack: Any) -> None:
    await harness.start("graphs.feedback_workflow:graph")
    root = await slack.post("U0ALICE", GENERAL, "<@U0BOT> foo")
    await wait_for_message(slack, GENERAL, root, containing("Please provide feedback: foo bar"))
    await slack.post("U0ALICE", GENERAL, "", thread_ts=root, files=[{"name": "notes.txt", "content": "baz"}])
    done = await wait_for_message(slack, GENERAL, root, containing("qux"))
    assert done["text"] == "foo bar [File notes.txt (text/plain, 3 bytes)]\nbaz qux"
