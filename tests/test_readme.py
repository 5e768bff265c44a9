"""The README and docs render: every code fence is closed, no text follows a closing fence (which would turn
the rest of the page into code), and every relative link points at a file that exists."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", REPO / "ARCHITECTURE.md", *sorted((REPO / "docs").glob("*.md"))]

FENCE = re.compile(r"^( {0,3})(`{3,}|~{3,})(.*)$")


@dataclass(frozen=True)
class Problem:
    line: int
    text: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.text}"


def fence_problems(text: str) -> list[Problem]:
    """CommonMark's fences, read strictly: an opening fence's info string has no backtick; a closing fence is
    the same character, at least as long, with nothing after it; a page ends with no fence open."""
    problems = []
    opened: tuple[int, str] | None = None  # (line, the fence's characters)
    for number, line in enumerate(text.splitlines(), start=1):
        match = FENCE.match(line)
        if match is None:
            continue
        marks, rest = match.group(2), match.group(3)
        if opened is None:
            if marks[0] == "`" and "`" in rest:
                problems.append(Problem(number, f"a fence with a backtick after it ({line.strip()[:60]!r})"))
                continue
            opened = (number, marks)
            continue
        open_marks = opened[1]
        if marks[0] != open_marks[0] or len(marks) < len(open_marks):
            continue  # inside the block: just text
        if rest.strip():
            problems.append(
                Problem(number, f"text after a closing fence ({line.strip()[:60]!r}): the rest renders as code")
            )
            continue
        opened = None
    if opened is not None:
        problems.append(Problem(opened[0], "a code fence that is never closed"))
    return problems


LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def outside_code(text: str) -> str:
    """The page without its fenced blocks and inline code spans (links there are not links)."""
    kept, inside = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            inside = not inside
            kept.append("")
            continue
        kept.append("" if inside else re.sub(r"`[^`]*`", "", line))
    return "\n".join(kept)


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in LINK.findall(outside_code(page.read_text())):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a URL or an anchor in the page
        path = target.split("#", 1)[0]
        if path and not (page.parent / path).exists():
            broken.append(target)
    return broken


def test_the_checker_sees_the_mistakes_it_is_for() -> None:
    assert fence_problems("```sh\nmake dev\n```\n") == []
    assert fence_problems("````md\n```\ninner\n```\n````\n") == []
    problems = fence_problems("```sh\nmake dev\n``` Models are ChatOpenAI\n## Next\n")
    assert [p.line for p in problems] == [3, 1]
    assert "text after a closing fence" in problems[0].text and "never closed" in problems[1].text
    (problem,) = fence_problems("text\n```python\nprint()\n")
    assert problem.line == 2 and "never closed" in problem.text
    assert fence_problems("```a`b\n") != []


@pytest.mark.parametrize("page", PAGES, ids=[str(page.relative_to(REPO)) for page in PAGES])
def test_code_fences_are_balanced(page: Path) -> None:
    problems = fence_problems(page.read_text())
    assert not problems, f"{page.relative_to(REPO)}:\n" + "\n".join(map(str, problems))


@pytest.mark.parametrize("page", PAGES, ids=[str(page.relative_to(REPO)) for page in PAGES])
def test_relative_links_point_at_files(page: Path) -> None:
    assert broken_links(page) == []


def test_the_readme_headings_are_headings() -> None:
    """The sections a reader looks for are headings, outside any code block."""
    text = outside_code((REPO / "README.md").read_text())
    headings = {line.lstrip("#").strip() for line in text.splitlines() if line.startswith("#")}
    for wanted in ("Quick start", "Running it against Slack", "Deploying", "Environment", "Tests"):
        assert wanted in headings, f"README has no heading {wanted!r} outside code"
