"""A cell attacking the channel between the host and its kernel (the cell is the adversary).

Whatever a cell writes, forks or signals, the next call must get its own answer, from its own
kernel, and the host must stay within its bounds. Each attack runs under runc and gVisor.
"""

from __future__ import annotations

import signal
import threading
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor

import pytest

from ossa.sandbox import Result, open_session

pytestmark = pytest.mark.docker

# Writes a frame to every descriptor the cell holds, in the old single-length framing and in
# the current two-length framing, so the attack hits whichever pipe carries replies.
FORGE = """
import json, os, struct
def forge(payload: bytes, times: int = 1) -> None:
    for name in os.listdir('/proc/self/fd'):
        fd = int(name)
        if fd < 3:
            continue
        for header in (struct.pack('>I', len(payload)), struct.pack('>II', len(payload), 0)):
            try:
                for _ in range(times):
                    os.write(fd, header + payload)
            except OSError:
                pass
"""

FORGED_REPLY = (
    "{'stdout': 'forged\\n', 'stderr': '', 'result': '5', 'error': None, 'truncated': False}"
)


@pytest.fixture(scope="module")
def target(runtime):
    with open_session(runtime=runtime, timeout=10, max_output=4000) as session:
        yield session


def answers_for_itself(session) -> None:
    """The next two calls each get their own output (no reply queued from an earlier call)."""
    for word in ("B", "C"):
        result = session.run(f"print({word!r}); 2 + 2")
        assert (result.stdout, result.result) == (f"{word}\n", "4"), result


def test_a_forged_reply_does_not_desynchronise_later_calls(target) -> None:
    target.run(f"{FORGE}\nforge(json.dumps({FORGED_REPLY}).encode())\nprint('real')")
    answers_for_itself(target)


def test_a_reply_forged_with_the_right_id_is_the_cells_own_output_only(target) -> None:
    steal_id = (
        "import sys\nframe = sys._getframe()\n"
        "while frame is not None and 'request' not in frame.f_locals:\n"
        "    frame = frame.f_back\n"
        "reply = {**" + FORGED_REPLY + ", 'id': frame.f_locals['request']['id']}\n"
        "forge(json.dumps(reply).encode(), times=3)\n"
    )
    target.run(f"{FORGE}\n{steal_id}print('real')")
    answers_for_itself(target)


@pytest.mark.parametrize(
    "payload",
    [
        b"[1, 2]",
        b'"a string"',
        b"42",
        b"null",
        b"\xff\xfe not utf-8",
        b"{not json",
        b"[" * 100_000 + b"]" * 100_000,
        b'{"id": 1, "stdout": 7, "stderr": [], "result": {}, "truncated": "yes"}',
        b'{"id": "x", "stdout": "", "stderr": "", "result": null, "error": null}',
    ],
    ids=["list", "string", "number", "null", "bad-utf8", "bad-json", "deep", "types", "id"],
)
def test_malformed_frames_of_any_shape_are_a_clean_result(target, payload) -> None:
    result = target.run(f"{FORGE}\nforge({payload!r})\nprint('real')")
    assert isinstance(result, Result)
    answers_for_itself(target)


def test_a_flood_of_frames_does_not_fill_the_host(target) -> None:
    flood = (
        f"{FORGE}\nbig = json.dumps({{'stdout': 'x' * 300_000}}).encode()\nforge(big, times=300)"
    )
    tracemalloc.start()
    try:
        target.run(flood)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 32 << 20  # 300 frames of 300 KB were never queued on the host
    answers_for_itself(target)


def test_a_forked_child_that_stops_the_kernel_cannot_answer_for_it(target) -> None:
    # Written against the channel of the first design (requests on fd 3, replies on fd 4):
    # the child stops the kernel once the call is over and answers every later request.
    impostor = """
import json, os, signal, struct, time
kernel = os.getpid()
if os.fork() == 0:
    time.sleep(0.5)
    os.kill(kernel, signal.SIGSTOP)
    for _ in range(20):
        try:
            header = os.read(3, 4)
            os.read(3, struct.unpack('>I', header)[0])
            data = json.dumps({'stdout': '5\\n', 'stderr': '', 'result': None,
                               'error': None, 'truncated': False}).encode()
            os.write(4, struct.pack('>I', len(data)) + data)
        except Exception:
            time.sleep(0.1)
    os._exit(0)
"""
    target.run(impostor)
    time.sleep(1.5)  # let the impostor act, as it would between two turns
    assert target.run("print(2 + 2)").stdout == "4\n"
    answers_for_itself(target)


def test_an_impostor_forked_by_a_thread_between_calls_cannot_answer(target) -> None:
    lurker = """
import os, signal, threading, time
kernel = os.getpid()
def lurk():
    time.sleep(0.3)  # the call is over: fork an impostor that stops the kernel
    if os.fork() == 0:
        os.kill(kernel, signal.SIGSTOP)
        time.sleep(600)
threading.Thread(target=lurk, daemon=True).start()
"""
    target.run(lurker)
    time.sleep(1.5)
    answers_for_itself(target)


def test_a_cell_that_breaks_the_kernels_own_code_gets_a_fresh_kernel(target) -> None:
    result = target.run("import json\njson.dumps = lambda *args, **kwargs: 'garbage'")
    assert result.restarted and "broke the sandbox protocol" in result.error
    answers_for_itself(target)


def test_a_kernel_that_stops_itself_is_restarted(target) -> None:
    result = target.run("import os, signal\nos.kill(os.getpid(), signal.SIGSTOP)", timeout=2)
    assert result.timed_out and result.restarted
    answers_for_itself(target)


def test_processes_a_cell_leaves_behind_are_gone_before_the_next_call(target) -> None:
    leave = (
        "import ctypes, os, subprocess\n"
        "subprocess.Popen(['sleep', '600'])\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # not dumpable: hidden from same-uid eyes\n"
        "    if os.fork() == 0:\n"
        "        import time; time.sleep(600)\n"
        "    os._exit(0)\n"
    )
    target.run(leave)
    count = (
        "import os\n"
        "mine = {os.getpid(), 1}\n"
        "alive = [p for p in os.listdir('/proc') if p.isdigit() and int(p) not in mine\n"
        "         and open(f'/proc/{p}/stat').read().rsplit(')', 1)[1].split()[0] != 'Z']\n"
        "len(alive)"
    )
    assert target.run(count).result == "0"


def test_the_supervisor_is_out_of_the_cells_reach(target) -> None:
    probe = """
import ctypes, os, signal
outcomes = []
for number in (signal.SIGSTOP, signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
    try:
        os.kill(1, number)
        outcomes.append('sent')
    except PermissionError:
        outcomes.append('denied')
for path in ('/proc/1/fd/0', '/proc/1/fd/1', '/proc/1/mem'):
    try:
        os.close(os.open(path, os.O_RDWR if path.endswith('fd/1') else os.O_RDONLY))
        outcomes.append('opened')
    except PermissionError:
        outcomes.append('denied')
libc = ctypes.CDLL(None, use_errno=True)
outcomes.append('denied' if libc.ptrace(16, 1, 0, 0) != 0 else 'attached')
outcomes
"""
    assert target.run(probe).result == repr(["denied"] * 8)
    status = target.run("print(open('/proc/self/status').read())").stdout
    assert "CapBnd:\t0000000000000000" in status  # nothing left to regain either
    answers_for_itself(target)


def test_interrupt_stops_the_call_and_the_next_call_is_in_step(target) -> None:
    target.run("kept = 'yes'")
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(target.run, "import time\nprint('A')\ntime.sleep(4)")
        time.sleep(1)
        assert target.interrupt()
        result = pending.result(timeout=60)
    assert result.interrupted and not result.timed_out and not result.restarted
    assert result.stdout == "A\n" and "KeyboardInterrupt" in result.error
    answers_for_itself(target)
    assert target.run("kept").result == "'yes'"
    assert target.interrupt() is False  # nothing in flight


def test_an_interrupt_the_cell_ignores_restarts_the_kernel(target) -> None:
    stubborn = "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\ntime.sleep(30)"
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(target.run, stubborn)
        time.sleep(1)
        target.interrupt()
        result = pending.result(timeout=60)
    assert result.interrupted and result.restarted
    assert "variables and imports were lost" in result.error
    answers_for_itself(target)


def test_ctrl_c_in_the_calling_thread_stops_the_cell(target) -> None:
    main = threading.main_thread()
    assert threading.current_thread() is main  # Ctrl-C's SIGINT goes to the main thread
    timer = threading.Timer(1.0, signal.pthread_kill, (main.ident, signal.SIGINT))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        target.run("import time\ntime.sleep(8)")
    timer.join()
    answers_for_itself(target)
