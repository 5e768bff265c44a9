"""Reviews of tool calls: LangChain's HumanInTheLoopMiddleware (batched and per call) and Agent Inbox.

Each request lists actions (a tool name and its arguments); each action gets a decision from its allowed ones.
A request resumes once every action is decided, with the decisions in order, in the shape its source expects.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from bot import blocks as b
from bot import text as t
from bot.interrupts import decided as shown
from bot.interrupts import long
from bot.interrupts.decided import Outcome
from bot.interrupts.edits import Item, _describe_args, _own_words, args_hidden, edit_fields, parse_edit
from bot.types import Answer, Errors, InvalidAction, OpenModal, Progress, Request, SlackMessage, Step, Verdict

if TYPE_CHECKING:
    from langchain.agents.middleware.human_in_the_loop import (
        Decision,
        DecisionType,
        HITLRequest,
        HITLResponse,
        ReviewConfig,
        ToolApprovalRequest,
    )
    from langgraph.prebuilt.interrupt import HumanResponse

REASON_BLOCK = "lgslack_reason"
RESPONSE_BLOCK = "lgslack_response"

LABELS = {
    "approve": ("Approve", "primary", ":white_check_mark:", "Approved"),
    "accept": ("Accept", "primary", ":white_check_mark:", "Accepted"),
    "edit": ("Edit", None, ":pencil2:", "Edited"),
    "reject": ("Reject", "danger", ":x:", "Rejected"),
    "respond": ("Respond", None, ":speech_balloon:", "Responded"),
    "ignore": ("Ignore", "danger", ":no_entry_sign:", "Ignored"),
}
HITL_DECISIONS: tuple[DecisionType, ...] = ("approve", "edit", "reject", "respond")
"""LangChain's decision types (`DecisionType`), in the order their buttons show."""


class ActionReview:
    """The shared machinery; subclasses read their items and build their decisions."""

    kind = "review"
    verb = "Decided"
    approve = "approve"

    def matches(self, request: Request) -> bool:
        raise NotImplementedError

    def items(self, request: Request) -> list[Item]:
        raise NotImplementedError

    def decision(self, item: Item, verb: str, *, args: dict[str, Any] | None = None, message: str = "") -> Any:
        raise NotImplementedError

    def assemble(self, items: list[Item], decisions: list[Any]) -> Any:
        raise NotImplementedError

    def read(self, decision: Any) -> Outcome | None:
        """A decision this renderer built, as a person reads it; None if it isn't one."""
        raise NotImplementedError

    def split(self, items: list[Item], value: Any) -> list[Any] | None:
        """The resume value's decisions, one per item in order; None if it doesn't hold them."""
        raise NotImplementedError

    def why_undecidable(self, item: Item) -> str:
        return "No decision can be made on this call: the request allows none."

    def summary(self, request: Request) -> str:
        names = ", ".join(item.name for item in self.items(request))
        return t.shorten(f"Review: {names}", 150)

    def tools(self, request: Request, action: str) -> list[str]:
        key = action.partition(":")[2]
        return [item.name for item in self.items(request) if not key or item.key == key]

    def _item(self, request: Request, key: str, verb: str, progress: Progress) -> Item:
        for item in self.items(request):
            if item.key == key:
                if verb not in item.allowed:
                    raise InvalidAction(f"{verb} is not allowed for {item.name}")
                if key in progress:
                    raise InvalidAction(f"{item.name} is already decided")
                return item
        raise InvalidAction(f"no action {key}")

    def render(self, record_id: str, request: Request, progress: Progress) -> SlackMessage:
        items = self.items(request)
        blocks: list[dict[str, Any]] = [
            b.context(":shield: *The agent asks for approval*" + (f" · {len(items)} actions" if len(items) > 1 else ""))
        ]
        for item in items:
            title = f"*`{t.escape(item.name)}`*"
            description = _own_words(item.description or "")
            if description:
                title += "\n" + t.to_mrkdwn(t.shorten(description, 1200))
            blocks.append(b.section(title))
            blocks.append(b.section(_describe_args(item.args)))
            done = progress.get(item.key)
            if done:
                outcome = self.read(done.get("decision"))
                blocks.append(b.section(self._decided_line(item, outcome, done.get("user"), full=False)))
            elif not item.allowed:
                blocks.append(b.context(":no_entry: " + self.why_undecidable(item)))
            else:
                blocks.append(
                    b.actions(
                        f"lgslack_item_{item.key}",
                        [
                            b.button(LABELS[verb][0], record_id, f"{verb}:{item.key}", LABELS[verb][1])
                            for verb in item.allowed
                        ],
                    )
                )
            blocks.append({"type": "divider"})
        tail = long.more_blocks(record_id, sum(args_hidden(item.args) for item in items))
        open_items = [i for i in items if i.key not in progress]
        if len(open_items) > 1 and all(self.approve in i.allowed for i in open_items):
            tail.append(
                b.actions(
                    "lgslack_all", [b.button(f"{LABELS[self.approve][0]} all", record_id, "approve_all", "primary")]
                )
            )
        blocks = [*blocks[: b.MESSAGE_BLOCKS - len(tail)], *tail]
        return SlackMessage(text=t.escape(self.summary(request)), blocks=blocks)

    def click(self, record_id: str, request: Request, action: str, progress: Progress) -> Answer | Step | OpenModal:
        if action == "approve_all":
            return self._approve_all(request, progress)
        verb, _, key = action.partition(":")
        if verb not in LABELS:
            raise InvalidAction(action)
        item = self._item(request, key, verb, progress)
        if verb in ("approve", "accept", "ignore"):
            return Step(key, self.decision(item, verb), f"{LABELS[verb][3]} {item.name}", Verdict(verb, item.name))
        if verb == "edit":
            blocks = edit_fields(item)
            return OpenModal(b.modal(record_id, action, f"Edit {item.name}", blocks, submit="Run it"))
        if verb == "reject":
            field = b.text_input(REASON_BLOCK, "Reason (the agent sees it)", optional=True)
            return OpenModal(b.modal(record_id, action, f"Reject {item.name}", [field], submit="Reject"))
        field = b.text_input(RESPONSE_BLOCK, "Your response (sent back as the tool's answer)")
        return OpenModal(b.modal(record_id, action, f"Respond for {item.name}", [field]))

    def submit(
        self, request: Request, action: str, values: dict[str, Any], progress: Progress
    ) -> Answer | Step | Errors:
        verb, _, key = action.partition(":")
        item = self._item(request, key, verb, progress)
        if verb == "edit":
            edited, errors = parse_edit(item, values)
            if errors:
                return errors
            return Step(
                key,
                self.decision(item, "edit", args=edited),
                f"Edited {item.name}: " + (", ".join(shown.changed_names(item.args, edited)) or "nothing") + " changed",
                Verdict("edit", item.name, edited_args=edited),
            )
        if verb == "reject":
            reason = b.submitted_text(values, REASON_BLOCK).strip()
            text = f"Rejected {item.name}" + (f": {reason}" if reason else "")
            return Step(
                key,
                self.decision(item, "reject", message=reason),
                text,
                Verdict("reject", item.name, reason=reason or None),
            )
        if verb == "respond":
            response = b.submitted_text(values, RESPONSE_BLOCK).strip()
            if not response:
                return {RESPONSE_BLOCK: "Write the response the agent should get."}
            return Step(
                key,
                self.decision(item, "respond", message=response),
                f"Responded for {item.name}: {response}",
                Verdict("respond", item.name, reason=response),
            )
        raise InvalidAction(action)

    def reply(self, request: Request, text: str) -> Answer | None:
        return None

    def complete(self, request: Request, progress: Progress) -> Answer | None:
        items = self.items(request)
        if not items or any(item.key not in progress for item in items):
            return None
        decisions = [progress[item.key]["decision"] for item in items]
        text = "\n".join(str(progress[item.key].get("text", "")) for item in items)
        return Answer(self.assemble(items, decisions), text)

    def decline(self, request: Request, reason: str) -> Answer | None:
        items = self.items(request)
        verb = "ignore" if self.approve == "accept" else "reject"
        decisions = [self.decision(item, verb, message=reason) for item in items]
        verdicts = tuple(Verdict(verb, item.name, reason=reason) for item in items)
        lines = "\n".join(f"{LABELS[verb][3]} {item.name}: {reason}" for item in items)
        return Answer(self.assemble(items, decisions), lines, verdicts)

    def _approve_all(self, request: Request, progress: Progress) -> Answer:
        items = self.items(request)
        decisions, lines, verdicts = [], [], []
        for item in items:
            if item.key in progress:
                decisions.append(progress[item.key]["decision"])
                lines.append(str(progress[item.key].get("text", "")))
                continue
            if self.approve not in item.allowed:
                raise InvalidAction(f"{item.name} can't be approved")
            decisions.append(self.decision(item, self.approve))
            lines.append(f"{LABELS[self.approve][3]} {item.name}")
            verdicts.append(Verdict(self.approve, item.name))
        return Answer(self.assemble(items, decisions), "\n".join(lines), tuple(verdicts))

    def _decided_line(self, item: Item, outcome: Outcome | None, user: Any, *, full: bool) -> str:
        emoji, label = (LABELS[outcome.verb][2], LABELS[outcome.verb][3]) if outcome else (":grey_question:", "Decided")
        return shown.item_view(item.name, item.args, outcome, user, emoji=emoji, label=label, full=full)

    def decided_view(self, request: Request, value: Any, progress: Progress, answer_text: str) -> list[str]:
        """The decided request, an item a section: from the decisions it resumed with (`value`), else from
        each item's recorded decision, else the answer's text."""
        items = self.items(request)
        decisions = self.split(items, value) if value is not None else None
        if decisions is None:
            return self.decided_lines(request, answer_text, progress)
        sections = []
        for item, decision in zip(items, decisions, strict=True):
            done = progress.get(item.key) or {}
            user = done.get("user") if done.get("decision") == decision else None
            sections.append(self._decided_line(item, self.read(decision), user, full=True))
        return sections

    def decided_lines(self, request: Request, answer_text: str, progress: Progress) -> list[str]:
        items = self.items(request)
        if items and all(item.key in progress for item in items):
            return [
                self._decided_line(item, self.read(done.get("decision")), done.get("user"), full=True)
                for item in items
                for done in [progress[item.key]]
            ]
        return ["\n".join("&gt; " + t.escape(line) for line in shown.clip(answer_text, 2500, 40).splitlines())]


class HitlBatchRenderer(ActionReview):
    """`HumanInTheLoopMiddleware` (batched): a `HITLRequest` → a `HITLResponse`, its decisions in order.

    An action is decided only as its `ReviewConfig` allows: one without a config gets no decision (deny by
    default); cancelling the request, or its timing out, rejects it."""

    kind = "hitl"

    def matches(self, request: Request) -> bool:
        value = request.value
        return (
            isinstance(value, Mapping)
            and isinstance(value.get("action_requests"), list)
            and all(isinstance(a, Mapping) and isinstance(a.get("name"), str) for a in value["action_requests"])
            and isinstance(value.get("review_configs"), list)
        )

    def items(self, request: Request) -> list[Item]:
        value: HITLRequest = request.value
        configs: dict[str, ReviewConfig] = {
            c["action_name"]: c
            for c in value.get("review_configs") or []
            if isinstance(c, Mapping) and isinstance(c.get("action_name"), str)
        }
        items = []
        for index, action in enumerate(value["action_requests"]):
            name = action["name"]
            allowed = (configs[name].get("allowed_decisions") or []) if name in configs else []
            items.append(
                Item(
                    str(index),
                    name,
                    dict(action.get("args") or {}),
                    action.get("description"),
                    tuple(d for d in HITL_DECISIONS if d in allowed),
                )
            )
        return items

    def why_undecidable(self, item: Item) -> str:
        return (
            f"No decision can be made on this call: the request has no review config for `{t.escape(item.name)}`."
            " It stays undecided until the request is cancelled or times out, which rejects it."
        )

    def decision(self, item: Item, verb: str, *, args: dict[str, Any] | None = None, message: str = "") -> Decision:
        return hitl_decision(item, verb, args=args, message=message)

    def assemble(self, items: list[Item], decisions: list[Any]) -> HITLResponse:
        return {"decisions": decisions}

    def read(self, decision: Any) -> Outcome | None:
        return shown.read_hitl(decision)

    def split(self, items: list[Item], value: Any) -> list[Any] | None:
        decisions = value.get("decisions") if isinstance(value, Mapping) else None
        return decisions if isinstance(decisions, list) and len(decisions) == len(items) else None


def hitl_decision(item: Item, verb: str, *, args: dict[str, Any] | None = None, message: str = "") -> Decision:
    """The LangChain `Decision` for a verb: what `HumanInTheLoopMiddleware` reads back."""
    if verb == "approve":
        return {"type": "approve"}
    if verb == "edit":
        return {"type": "edit", "edited_action": {"name": item.name, "args": args or {}}}
    if verb == "reject":
        return {"type": "reject", "message": message} if message else {"type": "reject"}
    if verb == "respond":
        return {"type": "respond", "message": message}
    raise InvalidAction(f"{verb} is not a decision on {item.name}")


def _allowed_from_schema(schema: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The decision types a per-call `response_schema` allows (the `type` consts of its branches)."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            kind = node.get("properties", {}).get("type") if isinstance(node.get("properties"), Mapping) else None
            if isinstance(kind, Mapping):
                for const in [kind.get("const"), *(kind.get("enum") or [])]:
                    if isinstance(const, str) and const in HITL_DECISIONS and const not in found:
                        found.append(const)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return tuple(found) or HITL_DECISIONS


class ToolApprovalRenderer(ActionReview):
    """`HumanInTheLoopMiddleware(interrupt_mode="per_call")`: one `ToolApprovalRequest`, resumed with one
    `Decision` of the types its `response_schema` allows."""

    kind = "tool_approval"

    def matches(self, request: Request) -> bool:
        return isinstance(request.value, Mapping) and request.value.get("type") == "tool_approval"

    def items(self, request: Request) -> list[Item]:
        value: ToolApprovalRequest = request.value
        allowed = _allowed_from_schema(request.schema)
        return [
            Item(
                "0",
                str(value.get("name", "?")),
                dict(value.get("args") or {}),
                value.get("description"),
                tuple(d for d in HITL_DECISIONS if d in allowed),
            )
        ]

    def decision(self, item: Item, verb: str, *, args: dict[str, Any] | None = None, message: str = "") -> Decision:
        return hitl_decision(item, verb, args=args, message=message)

    def assemble(self, items: list[Item], decisions: list[Any]) -> Decision:
        decision: Decision = decisions[0]
        return decision

    def read(self, decision: Any) -> Outcome | None:
        return shown.read_hitl(decision)

    def split(self, items: list[Item], value: Any) -> list[Any] | None:
        return [value] if isinstance(value, Mapping) else None


class AgentInboxRenderer(ActionReview):
    """Agent Inbox `HumanInterrupt` lists → a list of `HumanResponse`s, in order."""

    kind = "agent_inbox"
    approve = "accept"

    def matches(self, request: Request) -> bool:
        value = request.value
        return (
            isinstance(value, list)
            and bool(value)
            and all(isinstance(v, Mapping) and isinstance(v.get("action_request"), Mapping) for v in value)
        )

    def items(self, request: Request) -> list[Item]:
        items = []
        for index, entry in enumerate(request.value):
            config = entry.get("config") or {}
            allowed = [
                verb
                for verb, flag in (
                    ("accept", "allow_accept"),
                    ("edit", "allow_edit"),
                    ("respond", "allow_respond"),
                    ("ignore", "allow_ignore"),
                )
                if config.get(flag)
            ]
            action = entry["action_request"]
            items.append(
                Item(
                    str(index),
                    str(action.get("action", "?")),
                    dict(action.get("args") or {}),
                    entry.get("description"),
                    tuple(allowed),
                )
            )
        return items

    def why_undecidable(self, item: Item) -> str:
        return (
            "No decision can be made on this call: its config allows none. It stays undecided until the request"
            " is cancelled or times out, which ignores it."
        )

    def decision(
        self, item: Item, verb: str, *, args: dict[str, Any] | None = None, message: str = ""
    ) -> HumanResponse:
        if verb == "accept":
            return {"type": "accept", "args": None}
        if verb == "edit":
            return {"type": "edit", "args": {"action": item.name, "args": args or {}}}
        if verb == "respond":
            return {"type": "response", "args": message}
        if verb == "ignore":
            return {"type": "ignore", "args": None}
        raise InvalidAction(f"{verb} is not a response to {item.name}")

    def assemble(self, items: list[Item], decisions: list[Any]) -> list[HumanResponse]:
        return decisions

    def read(self, decision: Any) -> Outcome | None:
        return shown.read_inbox(decision)

    def split(self, items: list[Item], value: Any) -> list[Any] | None:
        return value if isinstance(value, list) and len(value) == len(items) else None
