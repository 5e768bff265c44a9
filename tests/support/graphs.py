"""Small graphs used only by tests, for payload kinds the example graphs don't raise."""

from typing import Annotated, Any, NotRequired

from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt
from typing_extensions import TypedDict

TRIP_SCHEMA = {
    "type": "object",
    "properties": {
        "destination": {"type": "string", "description": "Where to go", "minLength": 2},
        "nights": {"type": "integer", "minimum": 1, "maximum": 30, "default": 3},
        "budget": {"type": "number"},
        "refundable": {"type": "boolean", "default": True},
        "cabin": {"enum": ["economy", "business"], "default": "economy"},
        "extras": {"type": "array", "items": {"enum": ["wifi", "meals", "lounge"]}},
    },
    "required": ["destination", "nights"],
}


class Trip(TypedDict):
    request: str
    plan: NotRequired[Any]


def plan_trip(state: Trip) -> Trip:
    answer = interrupt({"question": f"Plan the trip: {state['request']}"}, response_schema=TRIP_SCHEMA)
    return {"plan": answer}


_trip = StateGraph(Trip)
_trip.add_node("plan_trip", plan_trip)
_trip.add_edge(START, "plan_trip")
_trip.add_edge("plan_trip", END)
form = _trip.compile()


class Inbox(TypedDict):
    request: str
    outcome: NotRequired[Any]


def review(state: Inbox) -> Inbox:
    responses = interrupt(
        [
            {
                "action_request": {"action": "create_ticket", "args": {"title": state["request"], "priority": 2}},
                "config": {"allow_accept": True, "allow_edit": True, "allow_respond": True, "allow_ignore": True},
                "description": "Create a support ticket?",
            }
        ]
    )
    return {"outcome": responses}


_inbox = StateGraph(Inbox)
_inbox.add_node("review", review)
_inbox.add_edge(START, "review")
_inbox.add_edge("review", END)
inbox = _inbox.compile()


def _merge(left: list[str], right: list[str]) -> list[str]:
    return [*left, *right]


class Parallel(TypedDict):
    topic: str
    answers: NotRequired[Annotated[list[str], _merge]]


def ask_legal(state: Parallel) -> Parallel:
    return {"answers": ["legal: " + interrupt(f"Legal, is {state['topic']} allowed?")]}


def ask_finance(state: Parallel) -> Parallel:
    return {"answers": ["finance: " + interrupt(f"Finance, can we afford {state['topic']}?")]}


_parallel = StateGraph(Parallel)
_parallel.add_node("ask_legal", ask_legal)
_parallel.add_node("ask_finance", ask_finance)
_parallel.add_edge(START, "ask_legal")
_parallel.add_edge(START, "ask_finance")
_parallel.add_edge("ask_legal", END)
_parallel.add_edge("ask_finance", END)
parallel = _parallel.compile()


class Ask(TypedDict):
    question: str
    answer: NotRequired[Any]


def ask_the_channel(state: Ask) -> Ask:
    return {"answer": interrupt({"type": "ask_human", "question": state["question"], "channel": "C0EXPERTS"})}


_ask = StateGraph(Ask)
_ask.add_node("ask_the_channel", ask_the_channel)
_ask.add_edge(START, "ask_the_channel")
_ask.add_edge("ask_the_channel", END)
ask_channel = _ask.compile()


class Deploy(TypedDict):
    service: str
    go: NotRequired[Any]


def confirm_deploy(state: Deploy) -> Deploy:
    plan = {
        "deploy": {"service": state["service"], "version": "1.4.2", "regions": ["eu-west-1", "us-east-1"]},
        "risk": "low",
        "rollback": True,
    }
    return {"go": interrupt(plan)}


_deploy = StateGraph(Deploy)
_deploy.add_node("confirm_deploy", confirm_deploy)
_deploy.add_edge(START, "confirm_deploy")
_deploy.add_edge("confirm_deploy", END)
raw = _deploy.compile()
