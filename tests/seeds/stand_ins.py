"""Local stand-ins for the external tools the seeds call (no network, no API key).

`TavilySearch` takes the place of `langchain_tavily.TavilySearch` in seed 002: the same tool name and constructor
argument, a query in, canned results out, so the seed's `tool = TavilySearch(max_results=2)` stays as written.
"""

from typing import Any

from langchain_core.tools import BaseTool
from pydantic import BaseModel, Field


class TavilySearchInput(BaseModel):
    query: str = Field(description="Search query to look up")


class TavilySearch(BaseTool):
    """A web search that answers from a fixed page, shaped like Tavily's results."""

    name: str = "tavily_search"
    description: str = "A search engine for current events and facts. Input should be a search query."
    args_schema: type[BaseModel] = TavilySearchInput
    max_results: int = 5

    def _run(self, query: str, **kwargs: Any) -> dict[str, Any]:
        results = [
            {
                "title": "LangGraph",
                "url": "https://langchain-ai.github.io/langgraph/",
                "content": f"Results for {query}: LangGraph is a library for building stateful agents.",
                "score": 0.9,
            }
        ]
        return {"query": query, "results": results[: self.max_results]}
