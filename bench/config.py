"""How big a run is: `full` (the default, for docs/benchmarks.md), `quick` (about a minute, while developing) and
`smoke` (a couple of turns, for the test that keeps the harness working)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Sizes:
    name: str
    turns: int
    """Echo turns one at a time (conversations of `turns_per_conversation`: a mention, then replies in its thread)."""
    turns_per_conversation: int
    resumes: int
    """Ask cycles one at a time, answered in the question's modal once the asking job has let go of the conversation."""
    reply_resumes: int
    """Ask cycles one at a time, answered by a reply in the thread."""
    eager_resumes: int
    """Ask cycles answered as soon as the question shows, while the asking job still holds the conversation."""
    throughput_levels: tuple[int, ...]
    throughput_turns: int
    """Turns (each a new conversation) each person has at each level of concurrency."""
    ack_levels: dict[int, int] = field(default_factory=dict)
    """Requests in flight → requests sent (closed loop: each client sends its next POST when the last is answered)."""
    pending: int = 0
    """Questions left unanswered for the memory figure (0: skipped)."""
    pending_concurrency: int = 100
    pending_resumes: int = 0
    count_turns: int = 0
    """Echo turns and ask cycles whose SQL statements are counted (0: skipped)."""
    slow_levels: tuple[int, ...] = ()
    """Conversations at once on the `slow` graph (each turn waits `bench.graphs.MODEL_WAIT`, as for a model), in
    process only: how many turns the bot keeps in flight while they wait."""
    server_levels: tuple[int, ...] = ()
    """Concurrency levels run against the LangGraph Server layout."""
    server_turns: int = 0
    server_resumes: int = 0
    layouts: tuple[str, ...] = ("serve", "split", "server")
    pending_layout: str = "serve"
    warmup: int = 3
    minimal: bool = True
    """Run the minimal durable bot (bench/minimal.py) beside the bare graph, for the floor rows."""
    minimal_rounds: int = 3
    """Rounds of the minimal bot's figures, each right after the bare graph's (1 in the smaller sizes)."""
    idle_window: float = 3.0
    """Seconds of idle processes watched for the background statements taken off the counts."""
    think: float = 0.1
    """Seconds of quiet before each turn or answer timed one at a time, on both sides, as when a person takes a moment
    to write: the bot's once it has nothing left to do, the bare graph's after its last call. This machine answers
    more slowly after a pause (a round trip to PostgreSQL: about 0.07 ms back to back, 0.5 ms after 100 ms idle), so
    both are timed after the same pause."""

    def with_layouts(self, layouts: tuple[str, ...]) -> Sizes:
        return replace(self, layouts=layouts)

    def for_server(self) -> Sizes:
        """What the LangGraph Server layout runs: `langgraph dev` takes about a second a run (its in-memory queue
        polls), so fewer of everything, and no acks (the same intake as `serve`)."""
        return replace(
            self,
            turns=self.server_turns or self.turns,
            resumes=self.server_resumes or self.resumes,
            reply_resumes=min(self.reply_resumes, 3),
            eager_resumes=0,
            throughput_levels=self.server_levels,
            throughput_turns=min(self.throughput_turns, 4),
            ack_levels={},
            pending=0,
            slow_levels=(),
        )


FULL = Sizes(
    name="full",
    turns=200,
    turns_per_conversation=5,
    resumes=100,
    reply_resumes=20,
    eager_resumes=30,
    throughput_levels=(10, 50, 100),
    throughput_turns=10,
    ack_levels={1: 200, 10: 1000, 100: 2000, 500: 2000},
    slow_levels=(50,),
    pending=10_000,
    pending_resumes=50,
    count_turns=20,
    server_levels=(10, 50),
    server_turns=30,
    server_resumes=15,
)

QUICK = Sizes(
    name="quick",
    turns=10,
    turns_per_conversation=5,
    resumes=5,
    reply_resumes=2,
    eager_resumes=3,
    throughput_levels=(10, 50),
    throughput_turns=2,
    ack_levels={1: 10, 10: 60, 100: 200, 500: 500},
    slow_levels=(50,),
    pending=200,
    pending_resumes=3,
    count_turns=2,
    server_levels=(10,),
    server_turns=5,
    server_resumes=3,
    layouts=("serve",),
    minimal_rounds=1,
)

SMOKE = Sizes(
    name="smoke",
    turns=2,
    turns_per_conversation=2,
    resumes=1,
    reply_resumes=0,
    eager_resumes=0,
    throughput_levels=(2,),
    throughput_turns=1,
    ack_levels={2: 4},
    slow_levels=(2,),
    count_turns=1,
    layouts=("serve",),
    warmup=1,
    idle_window=1.0,
    think=0.02,
    minimal_rounds=1,
)

SIZES = {s.name: s for s in (FULL, QUICK, SMOKE)}
