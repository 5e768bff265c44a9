"""The one place the example graphs get their chat model from."""

from __future__ import annotations

import functools
import os
from collections.abc import Awaitable, Callable
from typing import Any

from langchain.agents.middleware import AgentMiddleware, ModelRequest
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

DEFAULT_MODEL = "gpt-4o-mini"


@functools.cache
def chat_model() -> ChatOpenAI:
    """The shared ``ChatOpenAI``, built on first use.

    The model name comes from ``OPENAI_MODEL`` (default ``gpt-4o-mini``); the key and
    endpoint are left to ``ChatOpenAI`` itself (``OPENAI_API_KEY``, ``OPENAI_BASE_URL``).
    Graph modules call this inside nodes, so importing a graph needs no API key.
    Tests call ``chat_model.cache_clear()`` after changing the environment.
    """
    return ChatOpenAI(model=os.environ.get("OPENAI_MODEL") or DEFAULT_MODEL)


class ConfiguredModel(AgentMiddleware[Any, Any]):
    """Middleware for `create_agent`: every model call uses `chat_model()`, read from the environment then.

    `create_agent` wants a model when the graph is built, at import; that one is never called.
    """

    def wrap_model_call(self, request: ModelRequest[Any], handler: Callable[[ModelRequest[Any]], Any]) -> Any:
        return handler(request.override(model=chat_model()))

    async def awrap_model_call(
        self, request: ModelRequest[Any], handler: Callable[[ModelRequest[Any]], Awaitable[Any]]
    ) -> Any:
        return await handler(request.override(model=chat_model()))


def build_time_model() -> ChatOpenAI:
    """The model `create_agent` is built with; `ConfiguredModel` replaces it on every call."""
    return ChatOpenAI(model=DEFAULT_MODEL, api_key=SecretStr("replaced-on-every-call-by-ConfiguredModel"))
