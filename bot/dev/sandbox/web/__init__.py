"""The sandbox's web page: plain HTML, CSS and JavaScript served by `bot.dev.sandbox.page` (no build step)."""
