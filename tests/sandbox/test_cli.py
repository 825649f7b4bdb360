"""`ossa sandbox` commands, through typer's runner against the real daemon."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from ossa.cli import app

pytestmark = pytest.mark.docker
runner = CliRunner()


def test_exec_json_runs_snippets_in_one_session() -> None:
    done = runner.invoke(
        app, ["sandbox", "exec", "--json", "--timeout", "5", "x = 6", "print('hi'); x * 7"]
    )
    assert done.exit_code == 0, done.output
    results = json.loads(done.stdout)
    assert [r["result"] for r in results] == [None, "42"]
    assert results[1]["stdout"] == "hi\n"
    assert set(results[0]) >= {"error", "timed_out", "oom_killed", "restarted", "truncated"}


def test_exec_text_shows_errors_and_exits_nonzero() -> None:
    done = runner.invoke(
        app, ["sandbox", "exec", "--timeout", "2", "1 + 1", "import time; time.sleep(30)"]
    )
    assert done.exit_code == 1
    assert "[1]" in done.stdout and "2" in done.stdout
    assert "[2]" in done.stdout and "timed_out" in done.stdout
    assert "Timed out after 2 s" in done.stderr


def test_status_and_prune() -> None:
    status = runner.invoke(app, ["sandbox", "status"])
    assert status.exit_code == 0
    assert "image: ossa-sandbox:" in status.stdout and "present" in status.stdout
    prune = runner.invoke(app, ["sandbox", "prune"])
    assert prune.exit_code == 0 and prune.stdout.startswith("removed ")
