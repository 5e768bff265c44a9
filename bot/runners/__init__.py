"""Running a graph, in this process or on a LangGraph Server, through one implementation (core.py)."""
