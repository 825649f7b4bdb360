"""A tool's output streams to the user while the call runs: the loop yields ToolOutputDelta
events before ToolCallFinished, Ctrl-C still stops the call, transcripts keep only the final
output, and the chat view shows the streamed lines live. Order is proven with events that the
tool waits on, never with clocks."""

from __future__ import annotations

import io
import os
import signal
import threading
from collections.abc import Callable

import docker
import pytest
from rich.console import Console

from ossa.agent.engines import ReplayEngine
from ossa.agent.events import (
    ToolCallFinished,
    ToolCallStarted,
    ToolOutputDelta,
    TurnEnd,
    event_from_dict,
)
from ossa.agent.loop import INTERRUPTED_CALL, Agent
from ossa.agent.render import TerminalView
from ossa.agent.sessions import SessionStore
from ossa.harmony import Message, ToolNamespaceConfig
from ossa.tools import Tool, Toolbox, build_toolbox

from .test_render import Screen


class Streaming(Tool):
    """Reports a line, then waits until the consumer of the events has seen it."""

    name = "stream"

    def __init__(self) -> None:
        self.seen = threading.Event()
        self.finished = threading.Event()

    def namespace(self) -> ToolNamespaceConfig:
        return ToolNamespaceConfig(name="stream", description="Streams.", tools=[])

    def call(self, message: Message) -> list[Message]:
        return [self.reply(message, "no progress asked")]

    def call_streaming(self, message: Message, progress: Callable[[str], None]) -> list[Message]:
        progress("first line\n")
        released = self.seen.wait(30)
        progress("second line\n")
        self.finished.set()
        return [self.reply(message, f"first line\nsecond line\nreleased={released}")]


class PlainTool(Tool):
    """A plugin tool written before streaming: only ``call``."""

    name = "plain"

    def namespace(self) -> ToolNamespaceConfig:
        return ToolNamespaceConfig(name="plain", description="Plain.", tools=[])

    def call(self, message: Message) -> list[Message]:
        return [self.reply(message, "plain answer")]


def test_deltas_come_while_the_call_runs_and_before_it_finishes(replay_file, harmony):
    tool = Streaming()
    replay = replay_file(harmony.call("stream", "go"), harmony.final("Done."))
    agent = Agent(ReplayEngine(replay), Toolbox([tool]))
    events = []
    for event in agent.run("stream it"):
        events.append(event)
        if isinstance(event, ToolOutputDelta):
            if not tool.seen.is_set():
                assert not tool.finished.is_set()  # the first one came while the call ran
            tool.seen.set()  # the tool goes on only once its first line reached us
    kinds = [type(e) for e in events]
    first = kinds.index(ToolOutputDelta)
    assert kinds.index(ToolCallStarted) < first < kinds.index(ToolCallFinished)
    deltas = [e for e in events if isinstance(e, ToolOutputDelta)]
    assert "".join(d.text for d in deltas) == "first line\nsecond line\n"
    assert {(d.step, d.recipient) for d in deltas} == {(1, "stream")}
    finished = next(e for e in events if isinstance(e, ToolCallFinished))
    assert finished.output.endswith("released=True")
    assert events[-1].answer == "Done."


def test_a_tool_without_streaming_still_answers(replay_file, harmony):
    replay = replay_file(harmony.call("plain", "x"), harmony.final("Ok."))
    events = list(Agent(ReplayEngine(replay), Toolbox([PlainTool()])).run("go"))
    assert not any(isinstance(e, ToolOutputDelta) for e in events)
    assert next(e for e in events if isinstance(e, ToolCallFinished)).output == "plain answer"


class Stoppable(Tool):
    """Sends Ctrl-C to the process while it runs, then runs until it is interrupted."""

    name = "stoppable"

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.returned = threading.Event()

    def namespace(self) -> ToolNamespaceConfig:
        return ToolNamespaceConfig(name="stoppable", description="Stops.", tools=[])

    def call(self, message: Message) -> list[Message]:
        os.kill(os.getpid(), signal.SIGINT)  # the user presses Ctrl-C
        stopped = self.stop.wait(30)
        self.returned.set()
        return [self.reply(message, f"stopped={stopped}")]

    def interrupt(self) -> bool:
        self.stop.set()
        return True


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="signals")
def test_ctrl_c_in_the_waiting_thread_interrupts_the_tool_and_answers_the_call(
    replay_file, harmony
):
    tool = Stoppable()
    replay = replay_file(harmony.call("stoppable", "x"), harmony.final("Back."))
    agent = Agent(ReplayEngine(replay), Toolbox([tool]))
    events = list(agent.run("go"))
    assert tool.returned.is_set()  # waited for: the tool is in step for the next call
    assert events[-1].status == "interrupted"
    assert next(e for e in events if isinstance(e, ToolCallFinished)).output == INTERRUPTED_CALL
    assert list(agent.run("again"))[-1].answer == "Back."


def test_transcripts_keep_the_final_output_only(replay_file, harmony, tmp_path):
    tool = Streaming()
    tool.seen.set()
    session = SessionStore(tmp_path / "sessions").create({"model": "replay"})
    replay = replay_file(harmony.call("stream", "go"), harmony.final("Done."))
    events = list(Agent(ReplayEngine(replay), Toolbox([tool]), session=session).run("go"))
    assert any(isinstance(e, ToolOutputDelta) for e in events)
    text = session.path.read_text()
    assert "tool_output_delta" not in text and "tool_call_finished" in text
    delta = ToolOutputDelta(step=1, recipient="python", text="x")
    assert event_from_dict(delta.to_dict()) == delta


def test_the_chat_view_shows_streamed_output_live_then_the_panel():
    raw = io.StringIO()
    out = Console(file=raw, width=60, height=24, force_terminal=True, force_interactive=True)
    view = TerminalView(out)
    view.show(ToolCallStarted(step=1, recipient="python", arguments="print(1)"))
    view.show(ToolOutputDelta(step=1, recipient="python", text="live line\x1b]0;pwned\x07\n"))
    view.show(ToolCallFinished(1, "python", "print(1)", "final output"))
    view.show(TurnEnd(status="completed", answer=""))
    view.close()
    written = raw.getvalue()
    assert "live line" in written and "final output" in written
    assert written.index("live line") < written.index("final output")
    assert "\x1b]0;" not in written  # sanitized like all output
    screen = Screen()
    screen.feed(written)
    assert "final output" in screen.text() and "live line" not in screen.text()  # replaced


@pytest.mark.docker
@pytest.mark.timeout(180)
def test_a_python_cell_streams_its_prints_before_it_ends(replay_file, harmony):
    code = (
        "import os, time\nprint('first')\n"
        "for _ in range(6000):\n"
        "    if os.path.exists('/mnt/data/go'): break\n"
        "    time.sleep(0.01)\n"
        "print('second' if os.path.exists('/mnt/data/go') else 'never released')"
    )
    replay = replay_file(harmony.call("python", code), harmony.final("Printed."))
    toolbox = build_toolbox(["python"], plugins=False)
    try:
        agent = Agent(ReplayEngine(replay), toolbox)
        events = []
        for event in agent.run("print twice"):
            events.append(event)
            if isinstance(event, ToolOutputDelta) and "first" in event.text:
                session = toolbox.tools["python"]._session
                container = docker.from_env().containers.get(session.container_id)
                container.exec_run(["touch", "/mnt/data/go"], user="65534")
    finally:
        toolbox.close()
    kinds = [type(e) for e in events]
    assert kinds.index(ToolOutputDelta) < kinds.index(ToolCallFinished)
    finished = next(e for e in events if isinstance(e, ToolCallFinished))
    assert finished.output == "first\nsecond"
    assert events[-1].status == "completed"
