"""Forms from JSON schemas: `interrupt(value, response_schema=...)` becomes a modal, validated before resuming."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot import blocks as b
from bot import text as t
from bot.interrupts import long
from bot.types import Answer, Errors, InvalidAction, OpenModal, Progress, Request, SlackMessage, Step, Verdict

FIELD_PREFIX = "field:"
SINGLE = "value"
MODAL_QUESTION_SECTIONS = 5
MISSING = object()


def resolve(schema: Mapping[str, Any], root: Mapping[str, Any]) -> dict[str, Any]:
    """Follow a local `$ref` and unwrap `Optional[X]` (anyOf with null); keep title/description/default."""
    node = dict(schema)
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, Mapping) else {}
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    options = node.get("anyOf") or node.get("oneOf")
    if isinstance(options, list):
        concrete = [o for o in options if not (isinstance(o, Mapping) and o.get("type") == "null")]
        if len(concrete) == 1:
            inner = resolve(concrete[0], root)
            rest = {k: v for k, v in node.items() if k not in ("anyOf", "oneOf")}
            node = {**inner, **rest, "nullable": len(concrete) < len(options)}
    return node


@dataclass(frozen=True)
class Field:
    name: str
    schema: dict[str, Any]
    required: bool

    @property
    def block_id(self) -> str:
        return FIELD_PREFIX + self.name

    @property
    def label(self) -> str:
        return str(self.schema.get("title") or self.name.replace("_", " ").capitalize())

    @property
    def kind(self) -> str:
        schema = self.schema
        if "enum" in schema:
            return "enum"
        kind = schema.get("type")
        if kind == "array":
            items = schema.get("items") or {}
            return "enum_list" if isinstance(items, Mapping) and "enum" in items else "list"
        return kind if kind in ("string", "integer", "number", "boolean") else "json"


def fields_of(schema: Mapping[str, Any]) -> tuple[list[Field], bool]:
    """The form's fields, and whether the answer is an object of them (else the single field's value)."""
    root = resolve(schema, schema)
    properties = root.get("properties")
    if root.get("type") == "object" and isinstance(properties, Mapping) and properties:
        required = set(root.get("required") or [])
        return [Field(name, resolve(sub, schema), name in required) for name, sub in properties.items()], True
    return [Field(SINGLE, root, True)], False


def _option(value: Any) -> dict[str, Any]:
    shown = value if isinstance(value, str) else json.dumps(value)
    return {"text": b.plain(t.shorten(shown, 75)), "value": json.dumps(value)[:150]}


def initial_text(field: Field) -> str | None:
    """The text a text field starts with: its default, as the person would write it; None without one."""
    default = field.schema.get("default", MISSING)
    if field.kind not in ("string", "list", "json") or default is MISSING or default is None:
        return None
    if field.kind == "list" and isinstance(default, list):
        return "\n".join(map(str, default))
    return default if isinstance(default, str) else json.dumps(default)


def field_blocks(field: Field, room: int) -> list[dict[str, Any]]:
    """The field's input block; a default text too long for one Slack field is split over several."""
    block = field_block(field)
    initial = initial_text(field)
    if initial is None or len(initial) <= b.INPUT_LIMIT:
        return [block]
    fields = b.text_fields(
        field.block_id,
        field.label,
        initial,
        room=room,
        too_long="Its default is not filled in: write your value in the field below.",
        optional=block["optional"],
        hint=block["hint"]["text"] if "hint" in block else None,
    )
    if any(f["type"] == "input" for f in fields):
        return fields
    del block["element"]["initial_value"]
    return [*fields, block]


def field_block(field: Field) -> dict[str, Any]:
    schema = field.schema
    default = schema.get("default", MISSING)
    element: dict[str, Any]
    kind = field.kind
    if kind == "enum":
        element = {"type": "static_select", "options": [_option(v) for v in schema["enum"]][:100]}
        if default is not MISSING and default in schema["enum"]:
            element["initial_option"] = _option(default)
    elif kind == "enum_list":
        choices = schema["items"]["enum"]
        element = {"type": "multi_static_select", "options": [_option(v) for v in choices][:100]}
        if isinstance(default, list) and default:
            element["initial_options"] = [_option(v) for v in default if v in choices]
    elif kind == "boolean":
        element = {"type": "checkboxes", "options": [{"text": b.plain("Yes"), "value": "true"}]}
        if default is True:
            element["initial_options"] = [{"text": b.plain("Yes"), "value": "true"}]
    elif kind in ("integer", "number"):
        element = {"type": "number_input", "is_decimal_allowed": kind == "number"}
        for key, slack_key in (("minimum", "min_value"), ("maximum", "max_value")):
            if key in schema:
                element[slack_key] = str(schema[key])
        if default is not MISSING and default is not None:
            element["initial_value"] = str(default)
    else:
        element = {
            "type": "plain_text_input",
            "multiline": kind in ("list", "json") or int(schema.get("maxLength") or 0) > 150,
        }
        initial = initial_text(field)
        if initial:
            element["initial_value"] = initial
    element["action_id"] = "value"
    block: dict[str, Any] = {
        "type": "input",
        "block_id": field.block_id,
        "label": b.plain(t.shorten(field.label, 2000)),
        "element": element,
        "optional": not field.required or kind == "boolean",
    }
    hint = schema.get("description") or {"list": "One per line.", "json": "JSON."}.get(kind)
    if hint:
        block["hint"] = b.plain(t.shorten(str(hint), 2000))
    return block


def _parse(field: Field, state: Mapping[str, Any]) -> Any:
    """The field's value from its element state; MISSING when left empty; ValueError for a bad one."""
    kind, schema = field.kind, field.schema
    if kind == "boolean":
        return bool(state.get("selected_options"))
    if kind == "enum":
        selected = state.get("selected_option")
        return json.loads(selected["value"]) if selected else MISSING
    if kind == "enum_list":
        chosen = [json.loads(o["value"]) for o in state.get("selected_options") or []]
        return chosen or MISSING
    raw = state.get("value")
    if raw is None or str(raw).strip() == "":
        return MISSING
    raw = str(raw)
    if kind == "integer":
        try:
            number: float = int(raw.strip())
        except ValueError:
            raise ValueError("Write a whole number.") from None
    elif kind == "number":
        try:
            number = float(raw.strip())
        except ValueError:
            raise ValueError("Write a number.") from None
    elif kind == "list":
        return [line.strip() for line in raw.splitlines() if line.strip()]
    elif kind == "json":
        try:
            return json.loads(raw)
        except ValueError:
            raise ValueError("Write valid JSON.") from None
    else:
        if "minLength" in schema and len(raw) < int(schema["minLength"]):
            raise ValueError(f"Write at least {schema['minLength']} characters.")
        if "maxLength" in schema and len(raw) > int(schema["maxLength"]):
            raise ValueError(f"Write at most {schema['maxLength']} characters.")
        return raw
    if "minimum" in schema and number < schema["minimum"]:
        raise ValueError(f"The smallest allowed is {schema['minimum']}.")
    if "maximum" in schema and number > schema["maximum"]:
        raise ValueError(f"The largest allowed is {schema['maximum']}.")
    return number


def parse_form(schema: Mapping[str, Any], values: Mapping[str, Any]) -> tuple[Any, Errors]:
    """The resume value from a submitted form, or the errors to show next to each field."""
    fields, is_object = fields_of(schema)
    result: dict[str, Any] = {}
    errors: Errors = {}
    values = dict(values)
    for field in fields:
        where = b.field_id(values, field.block_id)
        if field.block_id in values:
            state = b.submitted(values, field.block_id)
        else:
            state = {"value": b.submitted_whole(values, field.block_id, initial_text(field))}
        try:
            value = _parse(field, state)
        except ValueError as exc:
            errors[where] = str(exc)
            continue
        if value is MISSING:
            if field.required:
                errors[where] = "This is required."
            continue
        result[field.name] = value
    if errors:
        return None, errors
    return (result if is_object else result.get(SINGLE)), {}


class SchemaRenderer:
    """Any interrupt with a `response_schema`: the value is shown, the answer is a form built from the schema."""

    kind = "schema"
    verb = "Answered"

    def matches(self, request: Request) -> bool:
        return isinstance(request.schema, Mapping) and bool(request.schema)

    def question(self, request: Request) -> str:
        value = request.value
        if isinstance(value, str):
            return value
        if isinstance(value, Mapping) and isinstance(value.get("question"), str):
            return str(value["question"])
        return json.dumps(value, ensure_ascii=False, default=str)

    def summary(self, request: Request) -> str:
        return t.shorten(self.question(request), 150)

    def tools(self, request: Request, action: str) -> list[str]:
        return []

    def question_sections(self, request: Request) -> list[str]:
        """The whole question: its text as mrkdwn, or the value as JSON code (Show all pages through them)."""
        value = request.value
        if isinstance(value, str) or (isinstance(value, Mapping) and isinstance(value.get("question"), str)):
            return [piece for piece in t.split(t.to_mrkdwn(self.question(request))) if piece] or ["_(no question)_"]
        return b.code_sections(value)

    def answer_sections(self, answer_text: str) -> list[str]:
        return b.code_sections(answer_text)

    def render(self, record_id: str, request: Request, progress: Progress) -> SlackMessage:
        shown, hidden = long.fit(self.question_sections(request), long.MESSAGE_SECTIONS)
        buttons = [b.button("Answer", record_id, "answer", "primary")]
        if hidden:
            buttons.append(long.show_button(record_id))
        blocks = [
            b.context(":raising_hand: *The agent needs your input*"),
            *map(b.section, shown),
            b.actions("lgslack_actions", buttons),
            *([b.context(long.left_out(hidden))] if hidden else []),
        ]
        return SlackMessage(text=f"The agent needs your input: {t.escape(self.summary(request))}", blocks=blocks)

    def click(self, record_id: str, request: Request, action: str, progress: Progress) -> Answer | Step | OpenModal:
        if action != "answer" or request.schema is None:
            raise InvalidAction(action)
        fields, _ = fields_of(request.schema)
        shown, hidden = long.fit(self.question_sections(request), MODAL_QUESTION_SECTIONS)
        blocks = [*map(b.section, shown)]
        if hidden:
            blocks.append(b.context(long.left_out(hidden, "question", in_modal=True)))
        for index, field in enumerate(fields):
            later = len(fields) - index - 1
            blocks.extend(field_blocks(field, room=b.MODAL_BLOCKS - len(blocks) - later))
        return OpenModal(b.modal(record_id, "answer", "Answer the agent", blocks))

    def submit(
        self, request: Request, action: str, values: dict[str, Any], progress: Progress
    ) -> Answer | Step | Errors:
        if request.schema is None:
            raise InvalidAction(action)
        value, errors = parse_form(request.schema, values)
        if errors:
            return errors
        return Answer(value, json.dumps(value, ensure_ascii=False, default=str), (Verdict("answer"),))

    def reply(self, request: Request, text: str) -> Answer | None:
        return None

    def complete(self, request: Request, progress: Progress) -> Answer | None:
        return None

    def decided_lines(self, request: Request, answer_text: str, progress: Progress) -> list[str]:
        shown, hidden = long.code_glance(answer_text, 2900)
        return [shown + (f"\n_{hidden:,} more characters of the answer are not shown here._" if hidden else "")]

    def decline(self, request: Request, reason: str) -> Answer | None:
        return None
