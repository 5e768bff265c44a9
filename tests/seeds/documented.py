"""What each seed documents: what is sent in, what the model says (the scripted fake plays the seed's model), the
human's answer, and the output the seed shows. Shared by the in-process and the LangGraph Server tests."""

from bot.dev.fake_openai import Reply, ToolCall

# Seeds 000 (simple usage) and 003: the Functional API feedback workflow.
FEEDBACK_INPUT = "foo"
FEEDBACK_QUESTION = "Please provide feedback: foo bar"
FEEDBACK_ANSWER = "baz"
FEEDBACK_RESULT = "foo bar baz qux"

# Seed 000: the ReAct agent. The tool call ids are the seed's.
REACT_USER = (
    "Can you reach out for human assistance: what should I feed my cat? "
    "Separately, can you check the weather in San Francisco?"
)
REACT_QUERY = "What should I feed my cat?"
REACT_ANSWER = "You should feed your cat a fish."
REACT_FINAL = (
    "For human assistance, you should feed your cat fish. \n\nRegarding the weather in San Francisco, it's sunny!"
)
HUMAN_CALL_ID = "call_joAEBVX7Abfm7TsZ0k95ZkVx"
WEATHER_CALL_ID = "call_ut7zfHFCcms63BOZLrRHszGH"
# The seed's `call_tool` wraps the tool's own ToolMessage (a tool invoked with a whole tool call returns one) in
# another, so the content is that message printed: exactly what the seed shows under "Tool Message".
REACT_TOOL_MESSAGES = [
    (HUMAN_CALL_ID, f"content='{REACT_ANSWER}' name='human_assistance' tool_call_id='{HUMAN_CALL_ID}'"),
    (WEATHER_CALL_ID, f"content=\"It's sunny!\" name='get_weather' tool_call_id='{WEATHER_CALL_ID}'"),
]


def react_script() -> list[Reply]:
    return [
        Reply(
            tool_calls=[
                ToolCall("human_assistance", {"query": REACT_QUERY}, id=HUMAN_CALL_ID),
                ToolCall("get_weather", {"location": "San Francisco"}, id=WEATHER_CALL_ID),
            ]
        ),
        Reply(content=REACT_FINAL),
    ]


# Seed 001: revise a text (LangGraph API: input {"some_text": "original text"}, resume "Edited text").
REVISE_INPUT = "original text"
REVISE_ANSWER = "Edited text"
REVISE_OUTPUT = {"some_text": "Edited text"}

# Seed 002: the tutorial chatbot.
CHATBOT_USER = "I need some expert guidance for building an AI agent. Could you request assistance for me?"
CHATBOT_INTRO = (
    "Certainly! I'd be happy to request expert assistance for you regarding building an AI agent. To do this, "
    "I'll use the human_assistance function to relay your request. Let me do that for you now."
)
CHATBOT_QUERY = (
    "A user is requesting expert guidance for building an AI agent. "
    "Could you please provide some expert advice or resources on this topic?"
)
CHATBOT_ANSWER = (
    "We, the experts are here to help! We'd recommend you check out LangGraph to build your agent. "
    "It's much more reliable and extensible than simple autonomous agents."
)
CHATBOT_FINAL = (
    "Thank you for your patience. I've received some expert advice regarding your request for guidance on "
    "building an AI agent. Here's what the experts have suggested:\n\n"
    "The experts recommend that you look into LangGraph for building your AI agent. They mention that LangGraph "
    "is a more reliable and extensible option compared to simple autonomous agents."
)
CHATBOT_TOOLS = ["tavily_search", "human_assistance"]


def chatbot_script() -> list[Reply]:
    return [
        Reply(content=CHATBOT_INTRO, tool_calls=[ToolCall("human_assistance", {"query": CHATBOT_QUERY})]),
        Reply(content=CHATBOT_FINAL),
    ]


# Seed 004: wait for user input with a breakpoint the client sets per run.
ASK_USER = "Use the search tool to ask the user where they are, then look up the weather there"
ASK_INTRO = (
    "Certainly! I'll use the AskHuman function to ask the user about their location, and then I'll use the search "
    "function to look up the weather for that location. Let's start by asking the user where they are."
)
ASK_QUESTION = "Where are you currently located?"
ASK_ANSWER = "san francisco"
ASK_CALL_ID = "toolu_01RFahzYPvnPWTb2USk2RdKR"
SEARCH_CALL_ID = "toolu_01K57ofmgG2wyJ8tYJjbq5k7"
ASK_THANKS = (
    "Thank you for letting me know that you're in San Francisco. "
    "Now, I'll use the search function to look up the weather in San Francisco."
)
ASK_SEARCH_RESULT = (
    '["I looked up: current weather in San Francisco. '
    "Result: It's sunny in San Francisco, but you better look out if you're a Gemini 😈.\"]"
)
ASK_FINAL = (
    "Based on the search results, I can provide you with information about the current weather in San Francisco:"
    "\n\nThe weather in San Francisco is currently sunny. It's a beautiful day in the city!"
    "\n\nIs there anything else you'd like to know about the weather or San Francisco?"
)


def ask_script() -> list[Reply]:
    return [
        Reply(content=ASK_INTRO, tool_calls=[ToolCall("AskHuman", {"question": ASK_QUESTION}, id=ASK_CALL_ID)]),
        Reply(
            content=ASK_THANKS,
            tool_calls=[ToolCall("search", {"query": "current weather in San Francisco"}, id=SEARCH_CALL_ID)],
        ),
        Reply(content=ASK_FINAL),
    ]


def breakpoints_toml(graph: str) -> str:
    """BOT_CONFIG stopping `graph` before `ask_human` on every run, as the seed's client does."""
    return f'[graphs."{graph}"]\ninterrupt_before = ["ask_human"]\n'
