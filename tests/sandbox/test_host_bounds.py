"""Every bound on the host's side holds on its own: sizes, deadlines, the lock, what is reported.

The waits below are generous upper bounds on calls that used to block for minutes or forever;
they are not timings under test.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

import docker
import pytest

from ossa.sandbox import SandboxError, open_session

pytestmark = pytest.mark.docker

BOUND = 120  # seconds: far above any deadline here, far below "forever"


@pytest.fixture(scope="module")
def bounded(runtime):
    with open_session(runtime=runtime, timeout=10, memory="256m", file_size=8 << 20) as session:
        yield session


def finishes(function, *args, **kwargs):
    """Run `function` on a thread and return its result, failing if it is still blocked."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(function, *args, **kwargs).result(timeout=BOUND)


def test_a_32mb_cell_is_refused_before_anything_is_sent(bounded) -> None:
    result = bounded.run("x = 1  # " + "a" * (32 << 20))
    assert result.error.startswith("The code is too long to send")
    assert bounded.run("2 + 2").result == "4"


def test_a_frozen_sandbox_cannot_hold_a_call_past_its_deadline(runtime) -> None:
    with open_session(runtime=runtime, timeout=3) as session:
        session.run("open('/mnt/data/kept', 'w').write('x')")
        docker.from_env().api.pause(session.container_id)  # nothing inside reads any more
        result = finishes(session.run, "x = '" + "a" * (4 << 20) + "'")
        assert result.timed_out and result.restarted
        assert "files in /mnt/data were lost" in result.error
        assert session.run("import os; os.listdir('/mnt/data')").result == "[]"


def test_a_fifo_is_not_transferred_and_blocks_nothing(bounded) -> None:
    bounded.run("import os\nos.mkfifo('/mnt/data/pipe')")
    with pytest.raises(SandboxError, match="not a regular file"):
        finishes(bounded.get_file, "pipe")
    with pytest.raises(SandboxError, match="not a regular file"):
        finishes(bounded.put_file, "pipe", b"data")
    assert finishes(bounded.run, "2 + 2").result == "4"


@pytest.mark.parametrize("target", ["/dev/zero", "/etc/passwd", "/proc/self/environ"])
def test_links_are_not_followed(bounded, target) -> None:
    bounded.run(f"import os\nos.symlink({target!r}, '/mnt/data/link')")
    try:
        with pytest.raises(SandboxError, match="symbolic link"):
            finishes(bounded.get_file, "link")
        with pytest.raises(SandboxError, match="symbolic link"):
            finishes(bounded.put_file, "link", b"data")
    finally:
        bounded.run("import os\nos.remove('/mnt/data/link')")
    assert bounded.run("2 + 2").result == "4"


def test_a_linked_directory_is_not_followed(bounded) -> None:
    bounded.run("import os\nos.symlink('/etc', '/mnt/data/etc')")
    with pytest.raises(SandboxError, match="symbolic link"):
        finishes(bounded.get_file, "etc/passwd")
    with pytest.raises(SandboxError, match="symbolic link"):
        finishes(bounded.put_file, "etc/new", b"data")


def test_transfers_over_the_file_limit_are_refused(bounded) -> None:
    with pytest.raises(SandboxError, match="over the 8388608-byte file limit"):
        bounded.put_file("big", b"x" * ((8 << 20) + 1))
    bounded.put_file("exact", b"x" * (8 << 20))
    assert len(bounded.get_file("exact")) == 8 << 20
    bounded.run("import os\nos.remove('/mnt/data/exact')")


def test_a_call_waiting_for_the_lock_gives_up_at_its_deadline(bounded) -> None:
    with ThreadPoolExecutor(1) as pool:
        busy = pool.submit(bounded.run, "import time\ntime.sleep(60)", timeout=60)
        time.sleep(0.5)
        with pytest.raises(SandboxError, match="busy"):
            finishes(bounded.get_file, "missing", timeout=0.5)
        bounded.interrupt()
        assert busy.result(timeout=BOUND).interrupted


def test_oom_is_reported_from_what_happened_in_that_call(bounded) -> None:
    child = "import subprocess, sys\nsubprocess.run([sys.executable, '-c', 'bytearray(1 << 30)'])"
    first = bounded.run(child)
    assert first.oom_killed
    second = bounded.run("import os\nos._exit(3)")
    assert second.restarted and not second.oom_killed
    assert "The kernel died" in second.error
    assert bounded.run("2 + 2").result == "4"


def test_text_that_cannot_be_encoded_is_escaped(bounded) -> None:
    surrogate = "class Odd:\n    def __repr__(self):\n        return 'odd \\ud800'\nOdd()"
    result = bounded.run(surrogate)
    assert result.result == "odd \\ud800"
    result.result.encode("utf-8")
    raised = bounded.run("raise ValueError('\\udcff')")
    raised.error.encode("utf-8")
    assert "\\udcff" in raised.error


def test_the_default_limits_leave_room_for_ordinary_files(bounded) -> None:
    payload = os.urandom(1 << 20)
    bounded.put_file("nested/dir/blob.bin", payload)
    assert bounded.get_file("nested/dir/blob.bin") == payload
