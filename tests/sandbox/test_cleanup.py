"""Containers never outlive their sessions: closed ones are removed, orphans at the next start."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import docker
import pytest

from ossa.sandbox import SandboxError, SandboxUnavailable, open_session
from ossa.sandbox.container import LABEL

pytestmark = pytest.mark.docker

HOLDER = """
from ossa.sandbox import open_session
session = open_session()
print(session.container_id, flush=True)
session.run("import time; time.sleep(600)")
"""


def ids(client: docker.DockerClient) -> set[str]:
    return {c.id for c in client.containers.list(all=True, filters={"label": LABEL})}


def test_close_removes_the_container() -> None:
    client = docker.from_env()
    with open_session() as session:
        container_id = session.container_id
        assert container_id in ids(client)
    assert container_id not in ids(client)
    with pytest.raises(Exception, match="closed"):
        session.run("1")


def test_close_from_another_thread_ends_a_running_call() -> None:
    session = open_session()
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(session.run, "import time; time.sleep(60)")
        time.sleep(1)
        session.close()
        with pytest.raises(SandboxError, match="closed"):
            pending.result(timeout=30)


def test_a_killed_process_leaves_an_orphan_that_the_next_start_removes() -> None:
    client = docker.from_env()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER], stdout=subprocess.PIPE, text=True)
    try:
        orphan = holder.stdout.readline().strip()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert orphan in ids(client)
    mine = open_session()  # a live session of this process must survive the clean-up
    try:
        next_start = "from ossa.sandbox import open_session; open_session().close()"
        subprocess.run([sys.executable, "-c", next_start], check=True, timeout=120)
        assert orphan not in ids(client)
        assert mine.container_id in ids(client)
    finally:
        mine.close()


def test_a_missing_image_fails_closed_naming_the_build_command() -> None:
    with pytest.raises(SandboxUnavailable, match="ossa sandbox build"):
        open_session(image="ossa-sandbox:does-not-exist")
