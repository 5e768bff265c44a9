"""Errors an operator must fix before the bot can run. The CLI prints one as a single line and exits with 2."""

from __future__ import annotations


class SetupError(Exception):
    """Something in the set-up is wrong; the message says what and what to do."""


class ConfigError(SetupError):
    """A missing or invalid setting; the message names the variable and what to do."""

    def __init__(self, variable: str, problem: str, hint: str) -> None:
        super().__init__(f"{variable} {problem}: {hint}")
        self.variable = variable


class DatabaseError(ConfigError):
    """The database can't be reached, started or migrated."""


class GraphError(ConfigError):
    """The graph can't be loaded or run: it can't be imported, its input can't take a message, or its server
    does not answer."""
