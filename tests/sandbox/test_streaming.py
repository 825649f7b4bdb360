"""A running cell's output reaches the host while the cell runs, bounded, and the final reply
stays the call's whole answer. Ordering is proven without clocks: the cell waits for a file
that the test creates only once the first chunk has arrived."""

from __future__ import annotations

import docker
import pytest

from ossa.sandbox import open_session

pytestmark = pytest.mark.docker

WAITS_FOR_GO = """
import os, sys, time
print('first')
print('to stderr', file=sys.stderr)
for _ in range(6000):
    if os.path.exists('/mnt/data/go'):
        break
    time.sleep(0.01)
print('second' if os.path.exists('/mnt/data/go') else 'never released')
"""


@pytest.fixture(scope="module")
def small(runtime):
    with open_session(runtime=runtime, timeout=90, max_output=4000) as session:
        yield session


def test_the_first_chunk_arrives_before_the_cell_ends(small) -> None:
    container = docker.from_env().containers.get(small.container_id)
    seen: list[str] = []

    def on_output(text: str) -> None:
        if not seen:  # the cell is still waiting: let it go on only now
            container.exec_run(["touch", "/mnt/data/go"], user="65534")
        seen.append(text)

    result = small.run(WAITS_FOR_GO, on_output=on_output)
    assert result.stdout == "first\nsecond\n" and result.stderr == "to stderr\n", result
    assert seen[0].startswith("first\n")
    # Output of the cell's last moments may come only with the reply, which has it all.
    assert set("".join(seen).splitlines()) <= {"first", "to stderr", "second"}
    small.run("import os; os.remove('/mnt/data/go')")


def test_streaming_leaves_the_final_output_unchanged(small) -> None:
    code = "import sys\nfor i in range(3000): print(i); print(-i, file=sys.stderr)\n'done'"
    plain = small.run(code)
    seen: list[str] = []
    streamed = small.run(code, on_output=seen.append)
    assert (streamed.stdout, streamed.stderr, streamed.result, streamed.truncated) == (
        plain.stdout,
        plain.stderr,
        plain.result,
        plain.truncated,
    )
    assert plain.truncated and seen


def test_a_flood_of_output_streams_at_most_the_output_cap(small) -> None:
    seen: list[str] = []
    result = small.run("for i in range(300000): print('x' * 50)", on_output=seen.append)
    assert result.truncated and result.error is None
    assert 0 < sum(map(len, seen)) <= 4000
    assert len(seen) < 100  # coalesced, not a frame per print
    assert small.run("print('next')").stdout == "next\n"


def test_forged_progress_frames_are_bounded_and_the_call_still_answers(small) -> None:
    """A cell writing progress frames for its own call gets no more through than it could
    print, and a malformed one is a protocol break handled as before."""
    forge = """
import json, os, struct
payload = json.dumps({'id': ID, 'progress': 'y' * 1000}).encode()
for name in os.listdir('/proc/self/fd'):
    if int(name) > 2:
        try:
            for _ in range(50):
                os.write(int(name), struct.pack('>II', len(payload), 0) + payload)
        except OSError:
            pass
print('real')
"""
    seen: list[str] = []
    request_id = next(small._ids) + 1  # the id the next run will use
    result = small.run(forge.replace("ID", str(request_id)), on_output=seen.append)
    assert sum(map(len, seen)) <= 4000
    assert result.stdout == "real\n" or result.restarted, result
    assert small.run("print('after')").stdout == "after\n"
    malformed = forge.replace("'progress': 'y' * 1000", "'progress': 5")
    result = small.run(malformed.replace("ID", str(next(small._ids) + 1)), on_output=seen.append)
    assert "protocol" in (result.error or ""), result
    assert small.run("print('after')").stdout == "after\n"


def test_an_on_output_that_raises_stops_the_cell_and_the_next_call_is_in_step(small) -> None:
    def broken(text: str) -> None:
        raise ValueError("a bug in the caller's callback")

    code = "import time\nprint('tick')\nwhile True: time.sleep(0.01)"
    with pytest.raises(ValueError, match="callback"):
        small.run(code, on_output=broken)
    assert small.run("print('next')").stdout == "next\n"
