"""Attacks on the limits: each must be stopped and reported, and leave a usable session."""

from __future__ import annotations

import tracemalloc

import pytest

from ossa.sandbox import open_session

pytestmark = pytest.mark.docker

MAX_OUTPUT = 4000


@pytest.fixture(scope="module")
def victim(runtime):
    limits = {"memory": "256m", "data_size": "16m", "file_size": 8 << 20, "max_output": MAX_OUTPUT}
    with open_session(runtime=runtime, timeout=3, **limits) as session:
        yield session


def assert_usable(session) -> None:
    assert session.run("sum(range(10))").result == "45"


def test_fork_bomb(victim) -> None:
    code = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    result = victim.run(code)
    assert result.timed_out or result.restarted
    assert_usable(victim)


def test_thread_bomb(victim) -> None:
    code = (
        "import threading, time\nwhile True:\n    try:\n"
        "        threading.Thread(target=time.sleep, args=(600,), daemon=True).start()\n"
        "    except RuntimeError:\n        pass"
    )
    assert victim.run(code).timed_out
    assert_usable(victim)


def test_threads_are_capped_under_every_runtime(victim) -> None:
    code = (
        "import threading, time\nstarted = 0\ntry:\n    for started in range(4000):\n"
        "        threading.Thread(target=time.sleep, args=(600,), daemon=True).start()\n"
        "except RuntimeError:\n    pass\nstarted"
    )
    assert int(victim.run(code).result) < victim.limits.pids
    assert victim.run("import os\nos._exit(0)").restarted  # a fresh kernel for the next test
    assert_usable(victim)


def test_memory_bomb_is_reported_as_oom(victim) -> None:
    victim.run("before = 1")
    result = victim.run("hog = bytearray(4 << 30)")
    assert result.oom_killed and result.restarted
    assert "out of memory" in result.error
    assert victim.run("'before' in globals()").result == "False"
    assert_usable(victim)


def test_disk_fill_stops_at_the_data_cap(victim) -> None:
    code = (
        "chunk = b'x' * (4 << 20)\n"
        "for i in range(100):\n"
        "    open(f'/mnt/data/fill{i}', 'wb').write(chunk)"
    )
    assert "No space left on device" in victim.run(code).error
    victim.run("import glob, os\nfor p in glob.glob('/mnt/data/fill*'): os.remove(p)")
    assert_usable(victim)


def test_a_file_over_the_size_limit_fails(victim) -> None:
    result = victim.run("open('/tmp/big', 'wb').write(b'x' * (9 << 20))")
    assert "File too large" in result.error
    assert_usable(victim)


def test_a_50mb_line_is_truncated_without_buffering_it_on_the_host(victim) -> None:
    tracemalloc.start()
    try:
        result = victim.run("import sys\nsys.stdout.write('a' * (50 << 20) + 'END')")
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.truncated
    assert result.stdout.startswith("a" * (MAX_OUTPUT // 2))
    assert result.stdout.endswith("aEND")
    assert "bytes of output truncated" in result.stdout
    assert len(result.stdout) < MAX_OUTPUT + 100
    assert peak < 5 << 20  # the host held a few copies of the capped reply, not 50 MB
    assert_usable(victim)


def test_runaway_output_is_interrupted_and_truncated(victim) -> None:
    result = victim.run("while True:\n    print('spam' * 100)")
    assert result.timed_out and result.truncated
    assert len(result.stdout) < MAX_OUTPUT + 100
    assert_usable(victim)


def test_python_loop_is_interrupted_and_keeps_state(victim) -> None:
    victim.run("kept = 'yes'")
    result = victim.run("while True:\n    pass", timeout=2)
    assert result.timed_out and not result.restarted
    assert "KeyboardInterrupt" in result.error
    assert victim.run("kept").result == "'yes'"


def test_c_level_loop_is_killed_and_the_kernel_restarted(victim) -> None:
    victim.run("kept = 'yes'")
    result = victim.run("sum(range(10 ** 13))", timeout=2)
    assert result.timed_out and result.restarted
    assert "variables and imports were lost" in result.error
    assert victim.run("'kept' in globals()").result == "False"
    assert_usable(victim)


def test_long_sleep_times_out(victim) -> None:
    result = victim.run("import time\ntime.sleep(3600)", timeout=2)
    assert result.timed_out
    assert "Timed out after 2 s" in result.error
    assert_usable(victim)
