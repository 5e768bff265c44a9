"""Values too long for one message: a request shows what fits and a "Show all" button for the rest.

"Show all" opens a read-only modal with the whole value split over sections; a value larger than one modal is
paged, its "Next part" button (the modal's submit) replacing the view with the next page. Anyone who sees the
message may open it, before or after the request is decided: it never claims or changes the request.
"""

from __future__ import annotations

import html
import re
from typing import Any

from bot import blocks as b
from bot import text as t
from bot.types import InvalidAction, OpenModal, Request

SHOW = "show"
QUESTION = "question"
ANSWER = "answer"
MESSAGE_SECTIONS = b.MESSAGE_BLOCKS - 5
"""Sections of a value in a request's message: its header, a note, the buttons and a hint take four blocks, and
the experts' copy of an escalated request adds one (its context replaces the header and hint, plus a footer)."""
PAGE_SECTIONS = b.MODAL_BLOCKS - 1
"""Sections per page of the modal: all its blocks but the line that says which part it is."""
_PAGE = re.compile(r"[1-9][0-9]{0,5}")
TITLES = {QUESTION: "The whole request", ANSWER: "The whole answer"}


def show_action(what: str, page: int = 1) -> str:
    return f"{SHOW}:{what}:{page}"


def is_show(action: str) -> bool:
    return action.startswith(SHOW + ":")


def parse_show(action: str) -> tuple[str, int]:
    """The part shown (question or answer) and the page (from 1) of a show action; InvalidAction if it is not."""
    parts = action.split(":")
    if len(parts) != 3 or parts[0] != SHOW or parts[1] not in TITLES or not _PAGE.fullmatch(parts[2]):
        raise InvalidAction(action)
    return parts[1], int(parts[2])


def shown_length(sections: list[str]) -> int:
    """About how many characters a person reads in these sections (entities and code fences not counted)."""
    return sum(len(html.unescape(s.removeprefix("```").removesuffix("```"))) for s in sections)


def code_glance(value: Any, limit: int) -> tuple[str, int]:
    """A value as one code block shortened to `limit`, and how many of its characters that leaves out."""
    shown = b.code(value, limit)
    inner = shown.removeprefix("```").removesuffix("```")
    full = b.dumped(value)
    if len(inner) == len(t.escape(full)):
        return shown, 0
    return shown, len(full) - len(html.unescape(inner.removesuffix("…")))


def fit(sections: list[str], room: int) -> tuple[list[str], int]:
    """The sections that fit in `room` blocks, and how many characters of the rest are left out."""
    shown = sections[: max(room, 0)]
    return shown, shown_length(sections[len(shown) :])


def show_button(record_id: str, what: str = QUESTION) -> dict[str, Any]:
    return b.button("Show all", record_id, show_action(what))


def left_out(hidden: int, what: str = "request", *, in_modal: bool = False) -> str:
    """The line that says how much is not shown, and where to read it."""
    button = "*Show all* on the request's message" if in_modal else "*Show all*"
    return f":page_facing_up: {hidden:,} more characters of this {what} are not shown here: {button} opens it whole."


def more_blocks(record_id: str, hidden: int, what: str = QUESTION) -> list[b.Block]:
    """A note and a "Show all" button, for a message with `hidden` characters left out (none when nothing is)."""
    if hidden <= 0:
        return []
    noun = "answer" if what == ANSWER else "request"
    return [b.context(left_out(hidden, noun)), b.actions(f"lgslack_more_{what}", [show_button(record_id, what)])]


def answer_sections(answer_text: str) -> list[str]:
    return [piece for piece in t.split(t.to_mrkdwn(answer_text)) if piece] or ["_(empty)_"]


def whole(renderer: Any, request: Request, what: str, answer_text: str) -> list[str]:
    """Every section of the request's question (as its renderer shows it) or of its answer."""
    if what == ANSWER:
        sections = getattr(renderer, "answer_sections", None)
        return list(sections(answer_text)) if callable(sections) else answer_sections(answer_text)
    sections = getattr(renderer, "question_sections", None)
    return list(sections(request)) if callable(sections) else b.code_sections(request.value)


def show_all(renderer: Any, record_id: str, request: Request, action: str, answer_text: str = "") -> OpenModal:
    """The read-only modal with one page of the whole question or answer; InvalidAction for a bad action."""
    what, page = parse_show(action)
    sections = whole(renderer, request, what, answer_text)
    pages = max(1, -(-len(sections) // PAGE_SECTIONS))
    if page > pages:
        raise InvalidAction(action)
    chunk = sections[(page - 1) * PAGE_SECTIONS : page * PAGE_SECTIONS]
    total = shown_length(sections)
    where = f"Part {page} of {pages} · " if pages > 1 else ""
    header = b.context(f"{where}{total:,} characters in all. Nothing here changes the request.")
    if pages == 1:
        submit = None
    elif page < pages:
        submit = f"Next part ({page + 1} of {pages})"
    else:
        submit = "Back to part 1"
    following = show_action(what, page + 1 if page < pages else 1)
    view = b.modal(record_id, following, TITLES[what], [header, *map(b.section, chunk)], submit=submit)
    return OpenModal(view)
