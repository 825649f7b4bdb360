"""The terminal view: streamed Markdown equals a whole render, the display never blocks the
caller, a spinner shows while waiting, citations of local files read well, no escape leaks."""

from __future__ import annotations

import io
import re
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from rich.markdown import Markdown

from ossa.agent import render
from ossa.agent.events import (
    CommentaryDelta,
    FinalDelta,
    ReasoningDelta,
    ToolCallFinished,
    ToolCallStarted,
    TurnEnd,
)
from ossa.agent.markdown_stream import MarkdownStream, render_markdown
from ossa.agent.render import TerminalView, show_messages
from ossa.agent.sanitize import ControlFilter, strip_controls
from ossa.harmony import Message, Role
from ossa.tools.browser import BrowserTool, LocalBackend
from ossa.tools.browser.page import Page

from .conftest import CORPUS

WIDTH = 60
LINK_ID = re.compile(r"\x1b\]8;id=\d+;")  # rich gives every hyperlink a random id


def console(
    file=None, *, interactive: bool = False, terminal: bool = True, width: int = WIDTH
) -> Console:
    return Console(
        file=file or io.StringIO(),
        width=width,
        height=24,
        force_terminal=terminal,
        force_interactive=interactive,
        color_system="standard" if terminal else None,
    )


def unpadded(out: Console) -> str:
    """What was written, without the spaces rich pads lines with."""
    return re.sub(r" +\n", "\n", out.file.getvalue())


def printed(*renderables) -> str:
    out = console()
    out.print(*renderables)
    return LINK_ID.sub("", out.file.getvalue())


# -- documents: every kind of block rich renders, joined with one or two newlines ------------

words = st.sampled_from(
    ["tide", "moon", "**bold**", "*em*", "`x = 1`", "~~old~~", "[web](https://example.com/a)",
     "([local, L2-L4](file:///srv/corpus/tides.md))", "&amp;", "a|b", "1.", "-", "#", "`"]
)  # fmt: skip
line = st.lists(words, min_size=1, max_size=8).map(" ".join)
code_line = st.sampled_from(["x = 1", "", "# not a heading", "- not a list", "  indented", "|a|"])


@st.composite
def block(draw) -> str:
    kind = draw(st.sampled_from(["para", "heading", "bullets", "numbers", "code", "table",
                                 "quote", "rule", "indented", "setext"]))  # fmt: skip
    if kind == "para":
        return "\n".join(draw(st.lists(line, min_size=1, max_size=3)))
    if kind == "heading":
        return "#" * draw(st.integers(1, 3)) + " " + draw(line)
    if kind in ("bullets", "numbers"):
        items = draw(st.lists(line, min_size=1, max_size=12))
        gap = draw(st.sampled_from(["\n", "\n\n"]))
        marks = ["- "] * len(items) if kind == "bullets" else [f"{i}. " for i in range(1, 13)]
        sub = "\n  - nested" if draw(st.booleans()) else ""
        return gap.join(mark + item for mark, item in zip(marks, items, strict=False)) + sub
    if kind == "code":
        body = "\n".join(draw(st.lists(code_line, max_size=5)))
        return f"```{draw(st.sampled_from(['', 'python', 'json']))}\n{body}\n```"
    if kind == "table":
        rows = draw(st.lists(st.tuples(line, line), min_size=0, max_size=4))
        return "| a | b |\n|---|:-:|\n" + "".join(f"| {x} | {y} |\n" for x, y in rows).rstrip()
    if kind == "quote":
        return "\n".join("> " + text for text in draw(st.lists(line, min_size=1, max_size=3)))
    if kind == "rule":
        return "---"
    if kind == "indented":
        return "    code line\n\n    more code"
    return draw(line).replace("#", "") + "\n" + draw(st.sampled_from(["===", "---"]))


documents = st.builds(
    lambda blocks, gaps, end: "".join(b + g for b, g in zip(blocks, gaps, strict=False)) + end,
    st.lists(block(), min_size=1, max_size=7),
    st.lists(st.sampled_from(["\n", "\n\n", "\n\n\n"]), min_size=7, max_size=7),
    st.sampled_from(["", "\n", "tail without newline"]),
)


def streamed(text: str, cuts: list[int], *, hyperlinks: bool = True) -> str:
    """What the view prints for ``text`` arriving in pieces cut at ``cuts``."""
    out = console()
    stream = MarkdownStream(hyperlinks=hyperlinks)
    bounds = sorted({0, len(text), *(c % (len(text) + 1) for c in cuts)})
    for start, end in zip(bounds, bounds[1:], strict=False):
        stream.feed(text[start:end])
        stream.live()  # drawn in between: must not change what is printed
        if (finished := stream.finished()) is not None:
            out.print(finished)
    if rest := stream.end():
        out.print(*rest)
    return LINK_ID.sub("", out.file.getvalue())


@settings(max_examples=150, deadline=None)
@given(documents, st.lists(st.integers(min_value=0), max_size=40), st.booleans())
def test_streamed_markdown_prints_what_a_whole_render_prints(text, cuts, links):
    assert streamed(text, cuts, hyperlinks=links) == printed(
        *render_markdown(text, hyperlinks=links)
    )


@settings(max_examples=60, deadline=None)
@given(documents, st.lists(st.integers(min_value=0), max_size=40))
def test_without_local_links_the_output_is_richs_own(text, cuts):
    text = text.replace("file:///srv/corpus/tides.md", "https://example.org/tides")
    assert streamed(text, cuts) == printed(Markdown(text))


def test_each_finished_block_is_printed_once_and_only_the_open_one_stays():
    stream = MarkdownStream()
    stream.feed("# Title\n\nFirst paragraph.\n\n```python\nx = 1\n\n")
    assert stream.finished() is not None  # title and paragraph
    assert stream.pending.startswith("```python")  # the open code block waits for its fence
    stream.feed("y = 2\n```\n\n| a |\n")
    assert stream.finished() is not None  # the code block, now closed
    stream.feed("|---|\n| 1 |\n")
    assert stream.finished() is None  # the table may still grow
    assert stream.pending == "| a |\n|---|\n| 1 |\n"


# -- the view and its display thread -----------------------------------------------------------


def answer_events(text: str, size: int = 7) -> list[FinalDelta]:
    return [FinalDelta(text[i : i + size]) for i in range(0, len(text), size)]


ANSWER = """\
Spring tides come **twice** a month ([local, L2-L4](file:///srv/corpus/tides.md)).

1. New moon
2. Full moon

```python
print("tide")
```

| moon | tide |
|------|------|
| new  | high |
"""


def test_the_view_prints_the_answer_as_a_whole_render_would():
    out = console()
    view = TerminalView(out)
    for event in answer_events(ANSWER):
        view.show(event)
    view.show(TurnEnd("completed", answer=ANSWER))
    view.close()
    assert LINK_ID.sub("", out.file.getvalue()) == printed(*render_markdown(ANSWER))


class Screen:
    """Just enough of a terminal for rich's live display: text, newline, CR, up, erase line."""

    TOKEN = re.compile(r"\x1b\[([\d;]*)([A-Za-z])|\x1b\[\?25[hl]|\x1b\]8;[^\x1b]*\x1b\\|(.)", re.S)

    def __init__(self) -> None:
        self.lines, self.row, self.col = [""], 0, 0

    def feed(self, data: str) -> None:
        for match in self.TOKEN.finditer(data):
            number, command, char = match.groups()
            if command == "A":
                self.row = max(0, self.row - int(number or 1))
            elif command == "m":
                continue
            elif command == "K":
                self.lines[self.row] = ""
            elif command is None and char == "\n":
                self.row, self.col = self.row + 1, 0
                if self.row == len(self.lines):
                    self.lines.append("")
            elif command is None and char == "\r":
                self.col = 0
            elif char is not None:
                current = self.lines[self.row].ljust(self.col)
                self.lines[self.row] = current[: self.col] + char + current[self.col + 1 :]
                self.col += 1

    def text(self) -> str:
        return "\n".join(line.rstrip() for line in self.lines).rstrip("\n")


class SignallingFile(io.StringIO):
    """A terminal that says when something was drawn."""

    def __init__(self) -> None:
        super().__init__()
        self.drawn = threading.Event()

    def write(self, text: str) -> int:
        self.drawn.set()
        return super().write(text)


TALL = (
    "Code taller than the terminal:\n\n```\n" + "".join(f"line {i}\n" for i in range(60)) + "```\n"
)


@pytest.mark.parametrize("answer", [ANSWER, TALL], ids=["blocks", "tall-block"])
def test_the_live_display_leaves_the_screen_a_whole_render_would(monkeypatch, answer):
    monkeypatch.setattr(render, "REFRESH_PER_SECOND", 1000.0)
    raw = SignallingFile()
    view = TerminalView(console(raw, interactive=True))
    view.begin_turn()
    for event in answer_events(answer, size=11):
        raw.drawn.clear()
        view.show(event)
        raw.drawn.wait()  # the open block was redrawn before the next piece comes
    view.close()
    assert raw.getvalue().count("\x1b[1A") > 20  # the live part was redrawn many times
    screen, expected = Screen(), Screen()
    screen.feed(raw.getvalue())
    expected.feed(printed(*render_markdown(answer)))
    assert screen.text() == expected.text()


class BlockingFile(io.StringIO):
    """A terminal that stops taking output until ``release`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.writing, self.release = threading.Event(), threading.Event()

    def write(self, text: str) -> int:
        self.writing.set()
        self.release.wait()
        return super().write(text)


def test_show_returns_while_the_terminal_is_stuck():
    stuck = BlockingFile()
    view = TerminalView(console(stuck))
    view.show(CommentaryDelta("Let me look."))
    stuck.writing.wait()  # the display thread is now blocked in write()
    for event in answer_events(ANSWER * 20):  # the caller goes on regardless
        view.show(event)
    view.show(TurnEnd("completed"))
    assert stuck.getvalue() == ""
    stuck.release.set()
    view.close()
    assert "Let me look." in stuck.getvalue()
    assert stuck.getvalue().count("Spring tides") == 20


def test_ctrl_c_while_closing_drops_what_is_not_drawn_yet():
    stuck = BlockingFile()
    view = TerminalView(console(stuck))
    view.show(CommentaryDelta("Let me look."))
    stuck.writing.wait()
    for event in answer_events(ANSWER * 5):
        view.show(event)
    thread = view._display.thread
    join, pressed = thread.join, []

    def join_with_ctrl_c() -> None:
        if not pressed:  # Ctrl-C while close() waits on the stuck terminal
            pressed.append(True)
            raise KeyboardInterrupt
        stuck.release.set()
        join()

    thread.join = join_with_ctrl_c
    view.close()
    assert "(display stopped)" in stuck.getvalue()
    assert stuck.getvalue().count("Spring tides") < 5


class BrokenFile(io.StringIO):
    def write(self, text: str) -> int:
        raise OSError("the terminal went away")


def test_a_display_failure_is_raised_by_close():
    view = TerminalView(console(BrokenFile()))
    view.show(FinalDelta("Hello."))
    with pytest.raises(OSError, match="went away"):
        view.close()
    view.show(FinalDelta("A new turn starts a new display."))
    with pytest.raises(OSError, match="went away"):
        view.close()


def test_a_spinner_shows_from_enter_to_the_first_token_and_while_a_tool_runs():
    raw = io.StringIO()
    view = TerminalView(console(raw, interactive=True))
    view.begin_turn()
    view.show(ToolCallStarted(step=1, recipient="browser.search", arguments="{}"))
    view.show(ToolCallFinished(1, "browser.search", "{}", output="results"))
    view.show(FinalDelta("Hello there."))
    view.close()
    output = raw.getvalue()
    spinner = output.index("thinking")
    assert spinner < output.index("→ browser.search") < output.index("running browser.search")
    assert output.index("running browser.search") < output.index("← browser.search")
    assert output.index("Hello there.") > output.rindex("thinking")


def test_no_spinner_off_a_terminal():
    out = console(terminal=False)
    view = TerminalView(out)
    view.begin_turn()
    view.show(FinalDelta("Hello."))
    view.close()
    assert unpadded(out) == "Hello.\n"


def test_reasoning_can_be_hidden_between_turns():
    out = console(terminal=False)
    view = TerminalView(out, show_reasoning=True)
    view.show(ReasoningDelta("visible thought"))
    view.close()
    view.show_reasoning = False
    view.show(ReasoningDelta("hidden thought"))
    view.show(FinalDelta("Answer."))
    view.close()
    assert "visible thought" in out.file.getvalue()
    assert "hidden thought" not in out.file.getvalue()


# -- citations and links -----------------------------------------------------------------------


def test_local_corpus_citations_read_as_paths_with_footnotes(monkeypatch):
    browser = BrowserTool(LocalBackend(CORPUS))
    document = CORPUS / "mxfp4.md"
    browser.stack.append(Page(url=document.resolve().as_uri(), title="MXFP4", text="a\nb\nc"))
    answer = browser.normalize_citations("A block has 32 weights 【0†L1-L2】 and a scale 【0†L3】.")
    monkeypatch.chdir(CORPUS.parent.parent)
    out = console(width=100)
    view = TerminalView(out)
    for event in answer_events(answer):
        view.show(event)
    view.close()
    text = out.file.getvalue()
    assert "weights (local, L1-L2 [1]) and a scale (local, L3 [1])." in text
    assert "[1] examples/corpus/mxfp4.md" in text
    assert "file:" not in text and "](" not in text


def test_web_links_are_hyperlinks_on_a_terminal_and_footnotes_elsewhere():
    answer = "See [the spec](https://example.com/spec)."
    assert "\x1b]8;" in printed(*render_markdown(answer, hyperlinks=True))
    plain = console(terminal=False)
    show_messages(
        plain, [Message.from_role_and_content(Role.ASSISTANT, answer)], show_reasoning=False
    )
    assert unpadded(plain) == "See the spec [1].\n\n[1] https://example.com/spec\n"


# -- control sequences -------------------------------------------------------------------------

NASTY = "red\x1b[31m title\x1b]0;pwned\x07 clear\x1b[2J csi\x9b2J bell\x07 back\x08 osc\x1b]8;;http://x\x1b\\"


def test_escape_sequences_never_reach_the_terminal():
    out = console(terminal=False)  # no styles of rich's own: any escape would be a leak
    view = TerminalView(out)
    view.show(ReasoningDelta(NASTY[:5]))
    view.show(ReasoningDelta(NASTY[5:]))
    view.show(ToolCallStarted(1, "python\x1b[31m", NASTY))
    view.show(ToolCallFinished(1, "python", NASTY, output=NASTY))
    for i in range(len(NASTY)):
        view.show(FinalDelta(NASTY[i]))
    view.close()
    text = out.file.getvalue()
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", text)
    assert "pwned" not in text  # the OSC sequence went whole, not just its escape byte
    assert text.count("red title clear csi2J bell back osc") == 4


def test_a_sequence_split_across_pieces_is_removed_whole():
    sieve = ControlFilter()
    pieces = ["a\x1b", "]0;ti", "tle\x07b\x1b[", "31", "mc\r", "\nd\r", "e\x1b"]
    assert "".join(sieve.feed(p) for p in pieces) + sieve.flush() == "abc\nd\ne"
    assert strip_controls("one\r\ntwo\rthree\tfour\x00") == "one\ntwo\nthree\tfour"
