"""Containers never outlive their sessions: closed ones are removed, orphans at the next start."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import docker
import pytest

from ossa.sandbox import SandboxError, SandboxUnavailable, open_session
from ossa.sandbox.container import LABEL, OWNER_LABEL

pytestmark = pytest.mark.docker

HOLDER = """
from ossa.sandbox import open_session
session = open_session()
print(session.container_id, flush=True)
session.run("import time; time.sleep(600)")
"""


def ids(client: docker.DockerClient) -> set[str]:
    return {row["Id"] for row in client.api.containers(all=True, filters={"label": LABEL})}


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


def owned_by(client: docker.DockerClient, pid: int) -> list[str]:
    """The ids of sandbox containers whose owner label names process `pid` (any label format)."""
    rows = client.api.containers(all=True, filters={"label": LABEL})  # one call: no races
    return [r["Id"] for r in rows if str(pid) in r["Labels"].get(OWNER_LABEL, "").split(":")]


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_signal_ends_ossa_with_its_containers_removed(number) -> None:
    client = docker.from_env()
    command = "import sys; from ossa.cli import main; sys.argv[0] = 'ossa'; main()"
    ossa = subprocess.Popen(
        [sys.executable, "-c", command, "sandbox", "exec", "import time; time.sleep(600)"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(600):  # until its session is up and the call is running
            if owned_by(client, ossa.pid) and ossa.poll() is None:
                break
            time.sleep(0.1)
        assert owned_by(client, ossa.pid)
        time.sleep(1)
        ossa.send_signal(number)
        assert ossa.wait(timeout=60) == 128 + number
        assert owned_by(client, ossa.pid) == []
    finally:
        ossa.kill()
        ossa.wait()
        for container in owned_by(client, ossa.pid):
            client.api.remove_container(container, force=True)


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root and unshare"
)
def test_a_live_owner_in_another_pid_namespace_keeps_its_container() -> None:
    client = docker.from_env()
    holder = subprocess.Popen(
        ["unshare", "--pid", "--fork", "--kill-child", "--mount-proc"]
        + [sys.executable, "-c", HOLDER],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        theirs = holder.stdout.readline().strip()
        assert theirs in ids(client)
        clean_up = "import docker; from ossa.sandbox.container import remove_orphans as r; r(docker.from_env())"
        subprocess.run([sys.executable, "-c", clean_up], check=True, timeout=120)
        assert theirs in ids(client)  # its pid means nothing here, so it is not judged dead
    finally:
        holder.kill()
        holder.wait()
        if theirs in ids(client):
            client.api.remove_container(theirs, force=True)
