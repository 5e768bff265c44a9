"""The one place the example graphs get their chat model from."""

from __future__ import annotations

import functools
import os

from langchain_openai import ChatOpenAI

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
