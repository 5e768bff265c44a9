"""The seed documents' code, as written there: only the model endpoint and external tools are swapped.

Each module is one seed's code (the LangGraph human-in-the-loop docs under ../shared/seeds/), kept with the seed's
own names, imports and shapes, so the tests drive exactly what a new user would paste in:

- seed000_feedback: "How to wait for user input (Functional API)", simple usage (MemorySaver).
- seed000_react_agent: the same guide's ReAct agent with the `human_assistance` tool.
- seed001_revise_text: "Human-in-the-loop" `interrupt` extended example (a `typing.TypedDict` state, no checkpointer).
- seed002_chatbot: the tutorial "Add human-in-the-loop controls" chatbot (TavilySearch replaced by a local tool).
- seed003_feedback: the Functional API "Basic human-in-the-loop workflow" (InMemorySaver).
- seed004_ask_human: the agent behind the LangGraph Server how-to "How to Wait for User Input" (breakpoints are
  passed per run, not compiled in).

The models are the seeds' own `ChatOpenAI(...)`/`init_chat_model(...)`: `OPENAI_BASE_URL` and `OPENAI_API_KEY` point
them at the scripted fake server. The modules are imported afresh by each test (the model reads the environment when
it is built), and loaded by path by `langgraph dev` (tests/seeds/langgraph.json).
"""
