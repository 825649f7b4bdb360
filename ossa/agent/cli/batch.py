"""``ossa batch``: many tasks, one toolbox (so one sandbox session) each, results as JSONL.

The results file is appended to, one line per finished task, each flushed and fsynced, so a
killed run loses at most the tasks it was working on. An id may appear more than once (a
failed task retried by a later run): the latest line for an id is its result. A rerun skips
the ids whose latest result is ``completed`` and retries every other one.
"""

from __future__ import annotations

import json
import os
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress
from rich.text import Text

from ossa import jsontext
from ossa.agent.cli.components import agent_tools, close, open_model, stderr
from ossa.agent.cli.options import AGENT, BROWSER, MODEL, SettingFlags, setting_flags
from ossa.agent.engines import Engine, SerializedEngine
from ossa.agent.loop import Agent
from ossa.agent.results import failed_result, task_result
from ossa.agent.settings import Settings
from ossa.errors import OssaError


@setting_flags(MODEL, AGENT, BROWSER)
def batch(
    tasks: Annotated[Path, typer.Argument(help='JSONL, one {"id": ..., "task": "..."} a line.')],
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="Results JSONL, appended to; the latest line per id counts."
        ),
    ],
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", min=1, help="Tasks at a time.")
    ] = 1,
    *,
    flags: SettingFlags,
) -> None:
    """Run many tasks; a rerun skips the completed ones and retries the rest.

    Exit status: 0 when every task completed, 1 when some did not, 130 on Ctrl-C.
    """
    settings = flags.settings()
    todo = read_tasks(tasks)
    completed = completed_ids(output)
    pending = [(task_id, text) for task_id, text in todo if str(task_id) not in completed]
    engine = shared(open_model(settings)) if pending else None
    writer = ResultWriter(output)
    running: dict[Future[dict[str, Any]], Agent] = {}
    failed: list[Any] = []
    with Progress(console=stderr) as progress, ThreadPoolExecutor(concurrency) as pool:
        bar = progress.add_task("tasks", total=len(todo), completed=len(todo) - len(pending))
        queue = list(reversed(pending))
        try:
            while queue or running:
                while queue and len(running) < concurrency:
                    task_id, text = queue.pop()
                    agent = _start(engine, settings, task_id, text)
                    if isinstance(agent, dict):  # it could not start: that is its result
                        failed.append(writer.write(agent))
                        progress.advance(bar)
                        continue
                    running[pool.submit(_run_task, agent, task_id, text, writer)] = agent
                if not running:
                    continue
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    running.pop(future)
                    result = future.result()
                    if result["status"] != "completed":
                        failed.append(result)
                    progress.advance(bar)
        except KeyboardInterrupt:
            queue.clear()
            for agent in running.values():
                agent.interrupt()  # interrupted tasks are not written: a rerun redoes them
            stderr.print(Text("interrupted; run the same command again to resume", "yellow"))
            raise typer.Exit(130) from None
    _summary(len(todo), len(todo) - len(pending), failed, output)
    if failed:
        raise typer.Exit(1)


def shared(engine: Engine) -> Engine:
    """The engine for all workers: one that declares a ``concurrency`` above 1 (a server)
    takes their calls at once; any other (the local engine, one model in this process) one at
    a time."""
    return engine if getattr(engine, "concurrency", 1) > 1 else SerializedEngine(engine)


def _start(engine: Engine | None, settings: Settings, task_id: Any, text: Any) -> Agent | dict:
    """An agent with its own toolbox, or the failed result of a task that cannot start."""
    if not isinstance(text, str) or not text.strip():
        return {"id": task_id, **failed_result("task", 'the task line has no "task" text')}
    try:
        return Agent(engine, agent_tools(settings), settings)
    except OssaError as exc:
        return {"id": task_id, **failed_result("tools", str(exc))}


def _run_task(agent: Agent, task_id: Any, text: str, writer: ResultWriter) -> dict[str, Any]:
    try:
        events = list(agent.run(text))
    finally:
        close(agent.toolbox)
    result = {"id": task_id, **task_result(events, agent.messages)}
    if result["status"] != "interrupted":
        writer.write(result)
    return result


def _summary(total: int, earlier: int, failed: list[dict[str, Any]], output: Path) -> None:
    done = total - len(failed)
    line = f"{total} task(s): {done} completed ({earlier} in earlier runs), {len(failed)} failed"
    if failed:
        ids = ", ".join(str(r["id"]) for r in failed[:10]) + (", …" if len(failed) > 10 else "")
        line += f" ({ids}; run again to retry them)"
    stderr.print(Text(f"{line}; results in {output}", "red" if failed else "green"))


def read_tasks(path: Path) -> list[tuple[Any, Any]]:
    """``(id, task)`` per line; a line without an id gets ``line-N``; ids must be unique."""
    try:
        lines = path.expanduser().read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise OssaError(f"cannot read tasks: {exc}") from None
    tasks, seen = [], set()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            task_id, text = record.get("id", f"line-{number}"), record.get("task")
        except (ValueError, AttributeError):
            raise OssaError(
                f'{path}:{number}: not a JSON object like {{"id": 1, "task": "..."}}'
            ) from None
        if str(task_id) in seen:
            raise OssaError(f"{path}:{number}: duplicate id {task_id!r}")
        seen.add(str(task_id))
        tasks.append((task_id, text))
    return tasks


def completed_ids(path: Path) -> set[str]:
    """Ids whose latest result is ``completed``; a torn line (a kill mid-write) is no result."""
    latest: dict[str, Any] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
                latest[str(record["id"])] = record.get("status")
            except (ValueError, KeyError, TypeError, AttributeError):
                continue
    return {task_id for task_id, status in latest.items() if status == "completed"}


class ResultWriter:
    """Appends result lines from several threads, each flushed and fsynced."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        if path.exists() and path.stat().st_size and not path.read_bytes().endswith(b"\n"):
            self._append("\n")  # keep the torn line apart from the next result

    def write(self, result: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self._append(jsontext.dumps(result) + "\n")
        return result

    def _append(self, text: str) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            raise OssaError(f"cannot write results to {self.path}: {exc.strerror or exc}") from None
