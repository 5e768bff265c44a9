"""The renderers: how an interrupt looks in Slack, and how a click, a reply or a modal becomes its resume value.

Pure: payload → blocks, answer → resume value; no I/O. `registry` picks the renderer of a request.
"""
