"""A graph that passes `interrupt()` values JSON can't encode as they are, and keeps what each resume gave back.

The input is one field, `kind`, naming the value to raise; `RECEIVED` (in process) and the state's `got` hold
the answer exactly as the graph received it.
"""

import dataclasses
import enum
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path, PurePosixPath
from typing import Any, NotRequired
from uuid import UUID

from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt
from pydantic import BaseModel
from typing_extensions import TypedDict

TICKET_ID = UUID("8c1f6e0a-4a8e-4f57-9d3f-2b7e5c9a1d42")
DUE = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


class Priority(enum.Enum):
    HIGH = "high"


class Ticket(BaseModel):
    title: str
    priority: Priority
    due: datetime
    id: UUID
    tags: set[str]


class Help(BaseModel):
    query: str


@dataclasses.dataclass
class Booking:
    room: str
    nights: int
    price: Decimal
    stay: timedelta
    path: Path


VALUES: dict[str, Any] = {
    "pydantic": lambda: Ticket(title="Printer on fire", priority=Priority.HIGH, due=DUE, id=TICKET_ID, tags={"ops"}),
    "pydantic_query": lambda: Help(query="Which printer is on fire?"),
    "datetime": lambda: DUE,
    "uuid": lambda: TICKET_ID,
    "dataclass": lambda: Booking("Lisbon", 3, Decimal("129.90"), timedelta(days=3), Path("/srv/booking.txt")),
    "set": lambda: {"only"},
    "tuple_of_things": lambda: ("first", b"\x00\xffbytes", float("nan"), frozenset({"x"})),
    "dirty_text": lambda: {"question": "Is \x00 this \ud800 clean?"},
    "ask_human": lambda: {"type": "ask_human", "question": "Ship it today?"},
    "malformed_hitl": lambda: {"action_requests": ["send_email"], "review_configs": "none"},
    "custom": lambda: {"custom": "only my renderer knows this"},
    # LangGraph's own checkpoint serializer refuses this type: the graph itself fails, and the thread says so.
    "unstorable": lambda: {"where": PurePosixPath("/srv")},
}

RECEIVED: list[Any] = []


class State(TypedDict):
    kind: str
    got: NotRequired[Any]


FORM_SCHEMA = {
    "type": "object",
    "properties": {
        "nights": {"type": "integer"},
        "budget": {"type": "number"},
        "refundable": {"type": "boolean"},
        "extras": {"type": "array", "items": {"enum": ["wifi", "meals"]}},
    },
    "required": ["nights"],
}


def ask(state: State) -> dict[str, Any]:
    kind = state["kind"].strip()
    if kind == "form":
        answer = interrupt({"question": "Book the stay"}, response_schema=FORM_SCHEMA)
    else:
        answer = interrupt(VALUES[kind]())
    RECEIVED.append(answer)
    return {"got": answer}


_builder = StateGraph(State)
_builder.add_node("ask", ask)
_builder.add_edge(START, "ask")
_builder.add_edge("ask", END)
graph = _builder.compile()
