"""Block Kit checks and helpers: validation, id assignment, finding elements, typed input state."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

MESSAGE_BLOCK_LIMIT = 50
MODAL_BLOCK_LIMIT = 100
MARKDOWN_TOTAL_LIMIT = 12_000
INPUT_TEXT_LIMIT = 3000

BLOCK_TYPES = frozenset(
    {
        "section",
        "header",
        "context",
        "divider",
        "actions",
        "input",
        "image",
        "markdown",
        "rich_text",
        "file",
        "video",
        "context_actions",
    }
)
SELECTS_WITH_OPTIONS = frozenset({"static_select", "multi_static_select"})
SELECTS_WITHOUT_OPTIONS = frozenset(
    {
        "external_select",
        "multi_external_select",
        "users_select",
        "multi_users_select",
        "conversations_select",
        "multi_conversations_select",
        "channels_select",
        "multi_channels_select",
    }
)
INPUT_ELEMENTS = frozenset(
    {
        "plain_text_input",
        "number_input",
        "email_text_input",
        "url_text_input",
        "rich_text_input",
        "datepicker",
        "timepicker",
        "datetimepicker",
        "checkboxes",
        "radio_buttons",
        "file_input",
    }
    | SELECTS_WITH_OPTIONS
    | SELECTS_WITHOUT_OPTIONS
)
ELEMENT_TYPES = INPUT_ELEMENTS | {"button", "overflow", "image", "workflow_button", "feedback_buttons", "icon_button"}
OPTION_LIMITS = {"static_select": 100, "multi_static_select": 100, "checkboxes": 10, "radio_buttons": 10, "overflow": 5}


def _pointer(path: tuple[str | int, ...]) -> str:
    return "/" + "/".join(str(p) for p in path)


@dataclass
class _Checker:
    errors: list[str] = field(default_factory=list)
    block_ids: set[str] = field(default_factory=set)
    action_ids: set[str] = field(default_factory=set)
    markdown_total: int = 0

    def fail(self, message: str, path: tuple[str | int, ...]) -> None:
        self.errors.append(f"{message} [json-pointer:{_pointer(path)}]")

    def text(
        self,
        obj: Any,
        path: tuple[str | int, ...],
        *,
        limit: int,
        plain_only: bool = False,
        required: bool = True,
    ) -> None:
        if obj is None:
            if required:
                self.fail("missing required field: text object", path)
            return
        if not isinstance(obj, dict):
            self.fail("must be a text object", path)
            return
        kind = obj.get("type")
        allowed = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
        if kind not in allowed:
            self.fail(f"must be one of {', '.join(allowed)} (got {kind!r})", (*path, "type"))
        text = obj.get("text")
        if not isinstance(text, str):
            self.fail("missing required field: text", (*path, "text"))
        elif not text:
            self.fail("must be more than 0 characters", (*path, "text"))
        elif len(text) > limit:
            self.fail(f"must be less than {limit + 1} characters", (*path, "text"))

    def length(self, value: Any, limit: int, path: tuple[str | int, ...]) -> None:
        if value is None:
            return
        if not isinstance(value, str):
            self.fail("must be a string", path)
        elif len(value) > limit:
            self.fail(f"must be less than {limit + 1} characters", path)

    def options(self, options: Any, limit: int, path: tuple[str | int, ...], *, minimum: int = 1) -> None:
        if not isinstance(options, list):
            self.fail("missing required field: options", path)
            return
        if len(options) < minimum:
            self.fail(f"must provide at least {minimum} items", path)
        if len(options) > limit:
            self.fail(f"must provide no more than {limit} items", path)
        for i, option in enumerate(options):
            if not isinstance(option, dict):
                self.fail("must be an option object", (*path, i))
                continue
            self.text(option.get("text"), (*path, i, "text"), limit=75)
            self.length(option.get("value"), 150, (*path, i, "value"))
            if option.get("value") is None:
                self.fail("missing required field: value", (*path, i, "value"))

    def element(self, element: Any, path: tuple[str | int, ...], *, allowed: frozenset[str] | None = None) -> None:
        if not isinstance(element, dict):
            self.fail("must be an element object", path)
            return
        kind = element.get("type")
        if kind not in ELEMENT_TYPES or (allowed is not None and kind not in allowed):
            self.fail(f"unsupported element type {kind!r}", (*path, "type"))
            return
        action_id = element.get("action_id")
        if action_id is not None:
            if not isinstance(action_id, str) or not action_id:
                self.fail("must be a non-empty string", (*path, "action_id"))
            elif len(action_id) > 255:
                self.fail("must be less than 256 characters", (*path, "action_id"))
            elif action_id in self.action_ids:
                self.fail(f"duplicate action_id {action_id!r}", (*path, "action_id"))
            else:
                self.action_ids.add(action_id)
        if kind == "button":
            self.text(element.get("text"), (*path, "text"), limit=75, plain_only=True)
            self.length(element.get("value"), 2000, (*path, "value"))
            self.length(element.get("url"), 3000, (*path, "url"))
            style = element.get("style")
            if style is not None and style not in ("primary", "danger"):
                self.fail("must be one of primary, danger", (*path, "style"))
        elif kind == "image":
            if not element.get("image_url") and not element.get("slack_file"):
                self.fail("missing required field: image_url", path)
            if not element.get("alt_text"):
                self.fail("missing required field: alt_text", (*path, "alt_text"))
        elif kind in OPTION_LIMITS:
            if kind in SELECTS_WITH_OPTIONS and "option_groups" in element:
                return
            self.options(
                element.get("options"),
                OPTION_LIMITS[kind],
                (*path, "options"),
                minimum=2 if kind == "overflow" else 1,
            )
        elif kind == "plain_text_input":
            self.plain_text_input(element, path)
        if "placeholder" in element:
            self.text(element["placeholder"], (*path, "placeholder"), limit=150, plain_only=True)

    def plain_text_input(self, element: dict[str, Any], path: tuple[str | int, ...]) -> None:
        """Slack's limits: an initial_value of at most 3,000 characters, min/max_length within 0–3,000."""
        self.length(element.get("initial_value"), INPUT_TEXT_LIMIT, (*path, "initial_value"))
        for key, least in (("min_length", 0), ("max_length", 1)):
            value = element.get(key)
            if value is None:
                continue
            if not isinstance(value, int) or isinstance(value, bool):
                self.fail("must be an integer", (*path, key))
            elif not least <= value <= INPUT_TEXT_LIMIT:
                self.fail(f"must be between {least} and {INPUT_TEXT_LIMIT}", (*path, key))

    def elements(
        self,
        elements: Any,
        path: tuple[str | int, ...],
        *,
        limit: int,
        allowed: frozenset[str] | None = None,
    ) -> list[Any]:
        if not isinstance(elements, list) or not elements:
            self.fail("must provide at least 1 item", path)
            return []
        if len(elements) > limit:
            self.fail(f"must provide no more than {limit} items", path)
        return elements

    def block(self, block: Any, path: tuple[str | int, ...]) -> None:
        # Slack wants an action_id unique among the action_ids of its block, not of the whole message.
        self.action_ids = set()
        if not isinstance(block, dict):
            self.fail("must be a block object", path)
            return
        kind = block.get("type")
        if kind not in BLOCK_TYPES:
            self.fail(f"unsupported block type {kind!r}", (*path, "type"))
            return
        block_id = block.get("block_id")
        if block_id is not None:
            if not isinstance(block_id, str) or not block_id or len(block_id) > 255:
                self.fail("must be a string of 1 to 255 characters", (*path, "block_id"))
            elif block_id in self.block_ids:
                self.fail(f"duplicate block_id {block_id!r}", (*path, "block_id"))
            else:
                self.block_ids.add(block_id)
        getattr(self, f"_block_{kind}")(block, path)

    def _block_section(self, block: dict[str, Any], path: tuple[str | int, ...]) -> None:
        has_text = "text" in block
        fields = block.get("fields")
        if not has_text and not fields and "expand" not in block:
            self.fail("must provide either text or fields", path)
        if has_text:
            self.text(block["text"], (*path, "text"), limit=3000)
        if fields is not None:
            if not isinstance(fields, list) or len(fields) > 10:
                self.fail("must provide no more than 10 items", (*path, "fields"))
            else:
                for i, item in enumerate(fields):
                    self.text(item, (*path, "fields", i), limit=2000)
        if "accessory" in block:
            self.element(block["accessory"], (*path, "accessory"))

    def _block_header(self, block: dict[str, Any], path: tuple[str | int, ...]) -> None:
        self.text(block.get("text"), (*path, "text"), limit=150, plain_only=True)

    def _block_context(self, block: dict[str, Any], path: tuple[str | int, ...]) -> None:
        for i, item in enumerate(self.elements(block.get("elements"), (*path, "elements"), limit=10)):
            if isinstance(item, dict) and item.get("type") == "image":
                self.element(item, (*path, "elements", i))
            else:
                self.text(item, (*path, "elements", i), limit=3000)

    def _block_divider(self, block: dict[str, Any], path: tuple[str | int, ...]) -> None:
        return None

    def _block_actions(self, block: dict[str, Any], path: tuple[str | int, ...]) -> None:
        allowed = ELEMENT_TYPES - {"image"}
        for i, item in enumerate(self.elements(block.get("elements"), (*path, "elements"), limit=25)):
            self.element(item, (*path, "elements", i), allowed=allowed)

    def _block_context_actions(self, block: dict[str, Any], path: tuple[str | int, ...]) -> None:
        allowed = frozenset({"feedback_buttons", "icon_button"})
        for i, item in enumerate(self.elements(block.get("elements"), (*path, "elements"), limit=5)):
            self.element(item, (*path, "elements", i), allowed=allowed)

    def _block_input(self, block: dict[str, Any], path: tuple[str | int, ...]) -> None:
        self.text(block.get("label"), (*path, "label"), limit=2000, plain_only=True)
        if "hint" in block:
            self.text(block["hint"], (*path, "hint"), limit=2000, plain_only=True)
        if "element" not in block:
            self.fail("missing required field: element", (*path, "element"))
        else:
            self.element(block["element"], (*path, "element"), allowed=INPUT_ELEMENTS)

    def _block_image(self, block: dict[str, Any], path: tuple[str | int, ...]) -> None:
        if not block.get("image_url") and not block.get("slack_file"):
            self.fail("missing required field: image_url", path)
        if not block.get("alt_text"):
            self.fail("missing required field: alt_text", (*path, "alt_text"))
        self.length(block.get("alt_text"), 2000, (*path, "alt_text"))
        if "title" in block:
            self.text(block["title"], (*path, "title"), limit=2000, plain_only=True)

    def _block_markdown(self, block: dict[str, Any], path: tuple[str | int, ...]) -> None:
        text = block.get("text")
        if not isinstance(text, str):
            self.fail("missing required field: text", (*path, "text"))
            return
        self.markdown_total += len(text)
        if self.markdown_total > MARKDOWN_TOTAL_LIMIT:
            self.fail(
                f"cumulative markdown text must be less than {MARKDOWN_TOTAL_LIMIT + 1} characters",
                (*path, "text"),
            )

    def _block_rich_text(self, block: dict[str, Any], path: tuple[str | int, ...]) -> None:
        if not isinstance(block.get("elements"), list):
            self.fail("missing required field: elements", (*path, "elements"))

    def _block_file(self, block: dict[str, Any], path: tuple[str | int, ...]) -> None:
        if not block.get("external_id"):
            self.fail("missing required field: external_id", (*path, "external_id"))

    def _block_video(self, block: dict[str, Any], path: tuple[str | int, ...]) -> None:
        for key in ("alt_text", "title", "thumbnail_url", "video_url"):
            if not block.get(key):
                self.fail(f"missing required field: {key}", (*path, key))


def validate_blocks(blocks: Any, *, limit: int = MESSAGE_BLOCK_LIMIT) -> list[str]:
    """Check a list of blocks against Block Kit's rules; returns human-readable errors (empty = valid)."""
    checker = _Checker()
    _check_block_list(checker, blocks, limit, ("blocks",))
    return checker.errors


def _check_block_list(checker: _Checker, blocks: Any, limit: int, path: tuple[str | int, ...]) -> None:
    if not isinstance(blocks, list):
        checker.fail("must be an array of blocks", path)
        return
    if len(blocks) > limit:
        checker.fail(f"must provide no more than {limit} items (got {len(blocks)})", path)
    for i, block in enumerate(blocks):
        checker.block(block, (*path, i))


def validate_view(view: Any) -> list[str]:
    """Check a modal (or home tab) view payload; returns human-readable errors (empty = valid)."""
    checker = _Checker()
    if not isinstance(view, dict):
        return ["must be a view object [json-pointer:/view]"]
    kind = view.get("type")
    if kind not in ("modal", "home"):
        checker.fail("must be one of modal, home", ("view", "type"))
    if kind == "modal":
        checker.text(view.get("title"), ("view", "title"), limit=24, plain_only=True)
        for key in ("submit", "close"):
            if key in view:
                checker.text(view[key], ("view", key), limit=24, plain_only=True)
        blocks = view.get("blocks")
        if isinstance(blocks, list) and "submit" not in view:
            if any(isinstance(b, dict) and b.get("type") == "input" for b in blocks):
                checker.fail("submit is required when an input block is present", ("view", "submit"))
    checker.length(view.get("callback_id"), 255, ("view", "callback_id"))
    checker.length(view.get("private_metadata"), 3000, ("view", "private_metadata"))
    checker.length(view.get("external_id"), 255, ("view", "external_id"))
    _check_block_list(checker, view.get("blocks"), MODAL_BLOCK_LIMIT, ("view", "blocks"))
    return checker.errors


def _short_id(seed: str, taken: set[str]) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    n = 0
    while True:
        digest = hashlib.sha256(f"{seed}:{n}".encode()).digest()
        candidate = "".join(alphabet[b % len(alphabet)] for b in digest[:5])
        if candidate not in taken:
            taken.add(candidate)
            return candidate
        n += 1


def assign_ids(blocks: list[dict[str, Any]], seed: str = "") -> list[dict[str, Any]]:
    """Return a deep copy with every block's `block_id` and element's `action_id` filled in, as Slack does."""
    result = copy.deepcopy(blocks)
    block_ids = {b["block_id"] for b in result if isinstance(b, dict) and b.get("block_id")}
    action_ids = {e["action_id"] for _, e in iter_elements(result) if e.get("action_id")}
    for i, block in enumerate(result):
        if isinstance(block, dict) and not block.get("block_id"):
            block["block_id"] = _short_id(f"{seed}:block:{i}", block_ids)
    for j, (_, element) in enumerate(iter_elements(result)):
        if element.get("type") != "image" and not element.get("action_id"):
            element["action_id"] = _short_id(f"{seed}:action:{j}", action_ids)
    return result


def iter_elements(blocks: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """Yield (block, element) for every element that can carry an action_id."""
    for block in blocks:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind in ("actions", "context_actions"):
            for element in block.get("elements") or []:
                if isinstance(element, dict):
                    yield block, element
        elif kind == "section" and isinstance(block.get("accessory"), dict):
            yield block, block["accessory"]
        elif kind == "input" and isinstance(block.get("element"), dict):
            yield block, block["element"]


def find_action(
    blocks: list[dict[str, Any]] | None,
    action_id: str,
    *,
    value: str | None = None,
    block_id: str | None = None,
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Find the (block, element) a person would click: by action_id, optionally narrowed by value/block_id.

    For buttons `value` must equal the button's value; for option-bearing elements it names an option.
    """
    for block, element in iter_elements(blocks or []):
        if element.get("action_id") != action_id:
            continue
        if block_id is not None and block.get("block_id") != block_id:
            continue
        if value is not None and element.get("type") == "button" and element.get("value") != value:
            continue
        return block, element
    return None


def all_options(element: dict[str, Any]) -> list[dict[str, Any]]:
    """The options of a select/checkbox/radio/overflow element, flattening option groups."""
    options = list(element.get("options") or [])
    for group in element.get("option_groups") or []:
        options.extend(group.get("options") or [])
    return options


def pick_option(element: dict[str, Any], wanted: Any) -> dict[str, Any]:
    """Resolve what a person picked (an option value, its label, or a full option dict) to an option."""
    if isinstance(wanted, dict):
        return wanted
    options = all_options(element)
    for option in options:
        if option.get("value") == wanted:
            return option
    for option in options:
        if (option.get("text") or {}).get("text") == wanted:
            return option
    if element.get("type") in SELECTS_WITHOUT_OPTIONS:
        return {"text": {"type": "plain_text", "text": str(wanted)}, "value": str(wanted)}
    raise ValueError(f"no option {wanted!r} in element {element.get('action_id')!r}")


def _as_list(raw: Any) -> list[Any]:
    if raw is None:
        return []
    return list(raw) if isinstance(raw, list | tuple) else [raw]


def rich_text_from_text(text: str) -> dict[str, Any]:
    """A rich_text value holding `text` as one section (as rich_text_input reports it)."""
    return {
        "type": "rich_text",
        "elements": [{"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}],
    }


def typed_state_value(element: dict[str, Any], raw: Any) -> dict[str, Any]:
    """Build the `state.values` entry Slack reports for an input element, from what a person entered.

    `raw` is the person's input: a string for text/number/date inputs, an option value (or label)
    for selects and radios, a list of those for multi-selects and checkboxes, a user/channel id
    for users/conversations selects. `None` means the field was left empty.
    """
    kind = str(element.get("type"))
    state: dict[str, Any] = {"type": kind}
    if kind in ("plain_text_input", "number_input", "email_text_input", "url_text_input"):
        state["value"] = None if raw is None else str(raw)
    elif kind in ("static_select", "external_select", "radio_buttons"):
        state["selected_option"] = None if raw is None else pick_option(element, raw)
    elif kind in ("multi_static_select", "multi_external_select", "checkboxes"):
        state["selected_options"] = [pick_option(element, item) for item in _as_list(raw)]
    elif kind == "datepicker":
        state["selected_date"] = raw
    elif kind == "timepicker":
        state["selected_time"] = raw
    elif kind == "datetimepicker":
        state["selected_date_time"] = None if raw is None else int(raw)
    elif kind == "users_select":
        state["selected_user"] = raw
    elif kind == "multi_users_select":
        state["selected_users"] = _as_list(raw)
    elif kind == "conversations_select":
        state["selected_conversation"] = raw
    elif kind == "multi_conversations_select":
        state["selected_conversations"] = _as_list(raw)
    elif kind == "channels_select":
        state["selected_channel"] = raw
    elif kind == "multi_channels_select":
        state["selected_channels"] = _as_list(raw)
    elif kind == "rich_text_input":
        state["rich_text_value"] = raw if isinstance(raw, dict) or raw is None else rich_text_from_text(str(raw))
    elif kind == "file_input":
        state["files"] = _as_list(raw)
    else:
        state["value"] = raw
    return state


def is_empty_state(state: dict[str, Any]) -> bool:
    """True when a typed state value holds nothing (an unfilled field)."""
    return all(v in (None, [], "") for k, v in state.items() if k != "type")


def stateful_elements(blocks: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """Yield (block, element) for elements whose values Slack reports in `state.values`."""
    for block, element in iter_elements(blocks):
        if element.get("type") in INPUT_ELEMENTS:
            yield block, element
