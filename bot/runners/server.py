"""The LangGraph Server runtime: the same runner (bot/runners/core.py) over LangGraph's `RemoteGraph`.

`LANGGRAPH_URL` names the server (LangGraph Platform, a self-hosted `langgraph-api`, or `langgraph dev`);
`LANGGRAPH_ASSISTANT_ID` the assistant or graph. The server keeps the checkpoints; the bot keeps its own
records (conversations, requests, jobs) in its database as usual. What differs from a graph in process: the
input rule comes from the assistant's schemas, a thread exists once a run made it, and a server's run goes on
after the job that asked for it died (`settle` joins it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx
from langgraph.pregel.remote import RemoteException, RemoteGraph
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import LangGraphError, NotFoundError

from bot.errors import GraphError
from bot.rules.graphs import NO_OPTIONS, GraphOptions
from bot.runners.core import GraphRunner, Runners
from bot.runners.inputs import InputRule, derive_input_rule
from bot.runners.outcomes import Sink, Trace
from bot.slack.files import user_message


class RemoteRunner(GraphRunner):
    """Runs one assistant of a LangGraph Server through `RemoteGraph` (`runs.stream` for each run, the thread's
    state for the rest)."""

    tools_from_stream = True

    def __init__(self, client: LangGraphClient, assistant: str, options: GraphOptions = NO_OPTIONS) -> None:
        before = options.interrupt_before
        # The server knows the graph's compiled-in breakpoints, we don't: any stop with nodes due and nothing
        # asked is one (a run can't be cut short by our process dying, so it is never an unfinished run).
        super().__init__(
            RemoteGraph(assistant, client=client),
            InputRule("text"),
            stops_at=["*"],
            interrupt_before="*" if before == "*" else (list(before) or None),
        )
        self.client = client
        self.assistant = assistant
        self.assistant_id: str | None = None

    async def setup(self) -> None:
        """Find the assistant (by id or graph name) and derive the input rule from its input schema."""
        if self.assistant_id is not None:
            return
        found = await self.client.assistants.search(graph_id=self.assistant, limit=1)
        if found:
            assistant_id = str(found[0]["assistant_id"])
        else:
            assistant_id = str((await self.client.assistants.get(self.assistant))["assistant_id"])
        schemas = await self.client.assistants.get_schemas(assistant_id)
        # A server that can't make the input schema (a `typing.TypedDict` state on Python < 3.12) sends null:
        # its state schema names the same fields.
        self.rule = derive_input_rule(dict(schemas.get("input_schema") or schemas.get("state_schema") or {}))
        self.graph = RemoteGraph(assistant_id, client=self.client)
        self.assistant_id = assistant_id

    def _message(self, text: str, files: Sequence[Mapping[str, Any]]) -> Any:
        return user_message(text, files)

    def _tool_message(self, content: str, tool_call_id: str) -> Any:
        # As JSON the server turns into a ToolMessage (a ToolMessage's own dump carries fields it would misread).
        return {"type": "tool", "tool_call_id": tool_call_id, "content": content}

    def _run_options(self, trace: Trace | None) -> dict[str, Any]:
        # A retried job's run waits for the one the server is still running on the thread; the trace's metadata
        # also marks the server's run record.
        return {"multitask_strategy": "enqueue", "metadata": trace.metadata() if trace else None}

    async def start(
        self,
        thread_id: str,
        text: str,
        files: Sequence[Mapping[str, Any]] = (),
        *,
        trace: Trace | None = None,
        sink: Sink | None = None,
    ) -> Any:
        await self.setup()
        return await super().start(thread_id, text, files, trace=trace, sink=sink)

    async def resume(
        self, thread_id: str, interrupt_id: str, value: Any, *, trace: Trace | None = None, sink: Sink | None = None
    ) -> Any:
        await self.setup()
        return await super().resume(thread_id, interrupt_id, value, trace=trace, sink=sink)

    async def _run(
        self,
        thread_id: str,
        graph_input: Any,
        trace: Trace | None = None,
        sink: Sink | None = None,
        *,
        began: bool = False,
    ) -> Any:
        try:
            return await super()._run(thread_id, graph_input, trace, sink, began=began)
        except RemoteException as exc:
            # As `runs.wait` raises it: the graph's error and message, not the event's dict.
            error = exc.args[0] if exc.args and isinstance(exc.args[0], Mapping) else {}
            raise Exception(f"{error.get('error')}: {error.get('message')}") from None

    async def checkpoint(self, thread_id: str) -> str | None:
        try:
            return await super().checkpoint(thread_id)
        except NotFoundError:
            return None  # the first run makes the thread (`if_not_exists="create"`)

    async def settle(self, thread_id: str) -> None:
        """A run the server accepted goes on after the job that asked for it died: wait for it to end."""
        for status in ("running", "pending"):
            for run in await self.client.runs.list(thread_id, status=status, limit=20):
                await self.client.runs.join(thread_id, run["run_id"])


async def remote_runners(
    url: str,
    assistant: str,
    api_key: str | None,
    *,
    options: Mapping[str, GraphOptions] | None = None,
    allowed: Sequence[str] = (),
) -> Runners:
    """Runners on a LangGraph Server (LANGGRAPH_ASSISTANT_ID, and the assistants BOT_GRAPHS allows); checks at
    start-up that it answers and has the assistant."""
    client = get_client(url=url, api_key=api_key)
    options = options or {}
    runners = Runners(assistant, lambda name: RemoteRunner(client, name, options.get(name, NO_OPTIONS)), allowed)
    default = RemoteRunner(client, assistant, options.get(assistant, NO_OPTIONS))
    try:
        await default.setup()
    except (httpx.HTTPError, LangGraphError) as exc:
        raise GraphError(
            "LANGGRAPH_URL",
            f"({url}) did not answer for assistant {assistant!r}",
            f"check the server is up and LANGGRAPH_ASSISTANT_ID names one of its graphs or assistants ({exc})",
        ) from None
    except ValueError as exc:
        problem = f"names {assistant!r}, whose input can't take a message"
        raise GraphError("LANGGRAPH_ASSISTANT_ID", problem, str(exc)) from None
    runners.add(assistant, default)
    return runners
