from __future__ import annotations

import pytest

from bot import text as t


def test_escape_neutralises_pings_and_links() -> None:
    assert (
        t.escape("<!channel> hi <@U123> & <http://x|y>") == "&lt;!channel&gt; hi &lt;@U123&gt; &amp; &lt;http://x|y&gt;"
    )


def test_to_mrkdwn_converts_markdown_after_escaping() -> None:
    converted = t.to_mrkdwn("## Plan\n**bold** and [docs](https://example.com/a?b=1&c=2) <!here>")
    assert converted == "*Plan*\n*bold* and <https://example.com/a?b=1&amp;c=2|docs> &lt;!here&gt;"


def test_from_slack_removes_the_bot_mention_and_unescapes() -> None:
    assert t.from_slack("<@U0BOT> is 1 &lt; 2 &amp;&amp; 3 &gt; 2?", "U0BOT") == "is 1 < 2 && 3 > 2?"


@pytest.mark.parametrize("size", [0, 10, 2999, 3000, 3001, 9000, 25_000])
def test_split_loses_nothing_and_respects_the_limit(size: int) -> None:
    words = ("word " * (size // 5 + 1))[:size]
    pieces = t.split(words)
    assert "".join(pieces) == words
    assert all(len(p) <= t.SECTION_LIMIT for p in pieces)


def test_split_prefers_paragraphs_and_never_cuts_an_entity() -> None:
    text = "a" * 2000 + "\n\n" + "b" * 2000
    assert t.split(text) == ["a" * 2000 + "\n\n", "b" * 2000]
    dense = t.escape("<" * 2000)
    pieces = t.split(dense)
    assert "".join(pieces) == dense
    assert all(p.startswith("&lt;") and p.endswith("&lt;") for p in pieces)
