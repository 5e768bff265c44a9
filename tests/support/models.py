"""Test-only resets: each test has its own event loop and its own scripted OpenAI server."""

from __future__ import annotations

from langchain_openai.chat_models import _client_utils

from graphs._model import chat_model


def reset_model_clients() -> None:
    """Forget the cached model and langchain-openai's cached HTTP clients.

    Those clients are cached by base URL and bound to the event loop that made them; a later test whose
    server happens to get the same port would otherwise reuse a client of a closed loop.
    """
    chat_model.cache_clear()
    _client_utils._cached_async_httpx_client.cache_clear()
    _client_utils._cached_sync_httpx_client.cache_clear()
