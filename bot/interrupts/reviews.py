"""Reviews of tool calls: LangChain's HumanInTheLoopMiddleware (batched and per call) and Agent Inbox.

Each request lists actions (a tool name and its arguments); each action gets a decision from its allowed ones.
A request resumes once every action is decided, with the decisions in order, in the shape its source expects.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot import blocks as b
from bot import text as t
from bot.types import Answer, Errors, InvalidAction, OpenModal, Progress, Request, SlackMessage, Step, Verdict

JSON_BLOCK = "lgslack_args_json"
REASON_BLOCK = "lgslack_reason"
RESPONSE_BLOCK = "lgslack_response"
ARG_PREFIX = "arg:"
SCALARS = (str, int, float, bool, type(None))

LABELS = {
    "approve": ("Approve", "primary", ":white_check_mark:", "Approved"),
    "accept": ("Accept", "primary", ":white_check_mark:", "Accepted"),
    "edit": ("Edit", None, ":pencil2:", "Edited"),
    "reject": ("Reject", "danger", ":x:", "Rejected"),
    "respond": ("Respond", None, ":speech_balloon:", "Responded"),
    "ignore": ("Ignore", "danger", ":no_entry_sign:", "Ignored"),
}


@dataclass(frozen=True)
class Item:
    key: str
    name: str
    args: dict[str, Any]
    description: str | None
    allowed: tuple[str, ...]


def _describe_args(args: Mapping[str, Any]) -> str:
    if not args:
        return "_no arguments_"
    lines = []
    for name, value in args.items():
        if isinstance(value, str) and "\n" not in value:
            lines.append(f"*{t.escape(name)}*: {t.escape(t.shorten(value, 500))}")
        elif isinstance(value, str):
            quoted = "\n".join("&gt; " + t.escape(line) for line in t.shorten(value, 1500).splitlines())
            lines.append(f"*{t.escape(name)}*:\n{quoted}")
        elif isinstance(value, SCALARS):
            lines.append(f"*{t.escape(name)}*: `{t.escape(json.dumps(value))}`")
        else:
            lines.append(f"*{t.escape(name)}*:\n{b.code(value, 800)}")
    return t.shorten("\n".join(lines), 2900)


def _own_words(description: str) -> str:
    """The description without the `Tool: …` / `Args: …` lines the middleware adds: the message shows those."""
    kept = [line for line in description.splitlines() if not line.startswith(("Tool: ", "Args: "))]
    return "\n".join(kept).strip()


def _coerce(original: Any, raw: str | None) -> Any:
    """Turn an edited field back into the original argument's type; ValueError says what is wrong."""
    raw = "" if raw is None else raw
    if isinstance(original, bool):
        lowered = raw.strip().lower()
        if lowered not in ("true", "false"):
            raise ValueError("Write true or false.")
        return lowered == "true"
    if isinstance(original, int):
        try:
            return int(raw.strip())
        except ValueError:
            raise ValueError("Write a whole number.") from None
    if isinstance(original, float):
        try:
            return float(raw.strip())
        except ValueError:
            raise ValueError("Write a number.") from None
    if original is None:
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def _field_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


def edit_fields(item: Item) -> list[dict[str, Any]]:
    """One field per argument when they are all scalars, else a JSON editor."""
    if item.args and len(item.args) <= 20 and all(isinstance(v, SCALARS) for v in item.args.values()):
        return [
            b.text_input(
                ARG_PREFIX + name,
                name,
                initial=_field_text(value),
                multiline=isinstance(value, str) and (len(value) > 60 or "\n" in value),
                optional=value in ("", None),
                hint={bool: "true or false", int: "a whole number", float: "a number"}.get(type(value)),
            )
            for name, value in item.args.items()
        ]
    dumped = json.dumps(item.args, indent=2, ensure_ascii=False, default=str)
    return [b.text_input(JSON_BLOCK, "Arguments (JSON)", initial=dumped, hint="A JSON object of the arguments.")]


def parse_edit(item: Item, values: dict[str, Any]) -> tuple[dict[str, Any], Errors]:
    """The edited arguments, or the errors to show next to the fields."""
    if JSON_BLOCK in values:
        raw = b.submitted_text(values, JSON_BLOCK)
        try:
            parsed = json.loads(raw)
        except json.JSONDecodeError as exc:
            return {}, {JSON_BLOCK: f"This is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."}
        if not isinstance(parsed, dict):
            return {}, {JSON_BLOCK: 'The arguments must be a JSON object, like {"name": "value"}.'}
        return parsed, {}
    edited: dict[str, Any] = {}
    errors: Errors = {}
    for name, original in item.args.items():
        block_id = ARG_PREFIX + name
        value = b.submitted(values, block_id).get("value")
        if not isinstance(values.get(block_id), dict) or (value is None and original not in (None, "")):
            errors[block_id] = "This field is empty: write a value, or reject the call instead."
            continue
        try:
            edited[name] = _coerce(original, value)
        except ValueError as exc:
            errors[block_id] = str(exc)
    return edited, errors


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
                blocks.append(b.context(self._decided_line(item, done)))
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
        open_items = [i for i in items if i.key not in progress]
        if len(open_items) > 1 and all(self.approve in i.allowed for i in open_items):
            blocks.append(
                b.actions(
                    "lgslack_all", [b.button(f"{LABELS[self.approve][0]} all", record_id, "approve_all", "primary")]
                )
            )
        return SlackMessage(text=t.escape(self.summary(request)), blocks=blocks[:50])

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
                f"Edited {item.name}: {json.dumps(edited, ensure_ascii=False, default=str)}",
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

    def _decided_line(self, item: Item, done: Mapping[str, Any]) -> str:
        verdict = done.get("verdict") or {}
        verb = str(verdict.get("decision") or "approve")
        emoji, label = LABELS.get(verb, LABELS["approve"])[2], LABELS.get(verb, LABELS["approve"])[3]
        line = f"{emoji} *{label}* `{t.escape(item.name)}`"
        if verdict.get("edited_args") is not None:
            line += " with " + t.escape(t.shorten(json.dumps(verdict["edited_args"], ensure_ascii=False), 300))
        if verdict.get("reason"):
            line += ": " + t.escape(t.shorten(str(verdict["reason"]), 300))
        if done.get("user"):
            line += f" — <@{done['user']}>"
        return line

    def decided_lines(self, request: Request, answer_text: str, progress: Progress) -> list[str]:
        items = self.items(request)
        if progress and all(item.key in progress for item in items):
            return ["\n".join(self._decided_line(item, progress[item.key]) for item in items)]
        return ["\n".join("&gt; " + t.escape(line) for line in answer_text.splitlines())]


class HitlBatchRenderer(ActionReview):
    """`HumanInTheLoopMiddleware` (batched): `{"action_requests", "review_configs"}` → `{"decisions": [...]}`."""

    kind = "hitl"

    def matches(self, request: Request) -> bool:
        value = request.value
        return isinstance(value, Mapping) and isinstance(value.get("action_requests"), list)

    def items(self, request: Request) -> list[Item]:
        configs = {c.get("action_name"): c for c in request.value.get("review_configs") or [] if isinstance(c, Mapping)}
        items = []
        for index, action in enumerate(request.value["action_requests"]):
            name = str(action.get("name", "?"))
            allowed = configs.get(name, {}).get("allowed_decisions") or ["approve", "edit", "reject", "respond"]
            items.append(
                Item(
                    str(index),
                    name,
                    dict(action.get("args") or {}),
                    action.get("description"),
                    tuple(d for d in allowed if d in LABELS),
                )
            )
        return items

    def decision(self, item: Item, verb: str, *, args: dict[str, Any] | None = None, message: str = "") -> Any:
        return hitl_decision(item, verb, args=args, message=message)

    def assemble(self, items: list[Item], decisions: list[Any]) -> Any:
        return {"decisions": decisions}


def hitl_decision(item: Item, verb: str, *, args: dict[str, Any] | None = None, message: str = "") -> Any:
    if verb == "edit":
        return {"type": "edit", "edited_action": {"name": item.name, "args": args or {}}}
    if verb == "reject":
        return {"type": "reject", "message": message} if message else {"type": "reject"}
    if verb == "respond":
        return {"type": "respond", "message": message}
    return {"type": "approve"}


def _allowed_from_schema(schema: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The decision types a per-call `response_schema` allows (the `type` consts of its branches)."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            kind = node.get("properties", {}).get("type") if isinstance(node.get("properties"), Mapping) else None
            if isinstance(kind, Mapping):
                for const in [kind.get("const"), *(kind.get("enum") or [])]:
                    if isinstance(const, str) and const in LABELS and const not in found:
                        found.append(const)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return tuple(found) or ("approve", "edit", "reject", "respond")


class ToolApprovalRenderer(ActionReview):
    """`HumanInTheLoopMiddleware(interrupt_mode="per_call")`: one `ToolApprovalRequest`, resumed with one decision."""

    kind = "tool_approval"

    def matches(self, request: Request) -> bool:
        return isinstance(request.value, Mapping) and request.value.get("type") == "tool_approval"

    def items(self, request: Request) -> list[Item]:
        value = request.value
        order = ("approve", "edit", "reject", "respond")
        allowed = _allowed_from_schema(request.schema)
        return [
            Item(
                "0",
                str(value.get("name", "?")),
                dict(value.get("args") or {}),
                value.get("description"),
                tuple(d for d in order if d in allowed),
            )
        ]

    def decision(self, item: Item, verb: str, *, args: dict[str, Any] | None = None, message: str = "") -> Any:
        return hitl_decision(item, verb, args=args, message=message)

    def assemble(self, items: list[Item], decisions: list[Any]) -> Any:
        return decisions[0]


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

    def decision(self, item: Item, verb: str, *, args: dict[str, Any] | None = None, message: str = "") -> Any:
        if verb == "edit":
            return {"type": "edit", "args": {"action": item.name, "args": args or {}}}
        if verb == "respond":
            return {"type": "response", "args": message}
        if verb == "ignore":
            return {"type": "ignore", "args": None}
        return {"type": "accept", "args": None}

    def assemble(self, items: list[Item], decisions: list[Any]) -> Any:
        return decisions
