"""The in-container side of a sandbox session: plain stdlib Python, passed in with `python3 -c`.

Two roles, chosen by the first argument:

- ``init`` is the container's PID 1. It reaps orphans, and on SIGUSR1 kills every other process
  in the container (``kill(-1)`` needs no fork, so it works even when a fork bomb has used up the
  pids limit); on SIGUSR2 it sends SIGINT to every other process (an interrupt). The host sends
  both through the Docker API, so no ``docker exec`` is needed to stop runaway code. A kernel
  that survives an interrupt kills every other process too, so no stray worker or bomb remains.
- ``kernel`` is the notebook: it reads length-prefixed JSON requests from the exec's stdin and
  answers on its stdout. Before running any user code it moves that channel to private
  descriptors and points fds 0/1/2 at /dev/null and two pipes, so user code (and its
  subprocesses) cannot read the requests or corrupt the replies by printing. A reader thread
  drains the pipes, keeping only a head and a tail of each stream.
"""

from __future__ import annotations

import ast
import contextlib
import json
import linecache
import os
import select
import signal
import struct
import sys
import threading
import time
import traceback

HEADER = struct.Struct(">I")


def init() -> None:
    """PID 1: reap orphans; SIGUSR1 kills every other process, SIGUSR2 interrupts them."""
    signal.signal(signal.SIGCHLD, lambda *_: reap())
    signal.signal(signal.SIGUSR1, lambda *_: kill_others())
    signal.signal(signal.SIGUSR2, lambda *_: interrupt_others())
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        signal.pause()


def reap() -> None:
    """Collect exited children so they do not linger as zombies."""
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def interrupt_others() -> None:
    """SIGINT every process but this one: the kernel raises KeyboardInterrupt in the cell."""
    with contextlib.suppress(ProcessLookupError):  # PID 1 must never die of an exception
        os.kill(-1, signal.SIGINT)


def kill_others() -> None:
    """SIGKILL every process but this one and PID 1 (``kill(-1)`` needs no fork)."""
    for _ in range(200):  # repeat: a fork bomb may fork between passes
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            return
        reap()
        time.sleep(0.005)


class Capture:
    """Keeps the first and last `half` bytes of a stream and counts what fell between."""

    def __init__(self, half: int) -> None:
        self.half = half
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = 0

    def add(self, data: bytes) -> None:
        room = self.half - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        self.tail += data
        excess = len(self.tail) - self.half
        if excess > 0:
            del self.tail[:excess]
            self.dropped += excess

    def text(self) -> str:
        out = self.head.decode("utf-8", "replace")
        if self.dropped:
            out += f"\n[... {self.dropped} bytes of output truncated ...]\n"
        return out + self.tail.decode("utf-8", "replace")


class Output:
    """Drains the stdout/stderr pipes on a thread so user code never blocks on a full pipe."""

    def __init__(self, half: int) -> None:
        self.half = half
        self.pipes = {}
        for fd in (1, 2):
            read_end, write_end = os.pipe()
            os.dup2(write_end, fd)
            os.close(write_end)
            self.pipes[read_end] = fd
        self.wake_r, self.wake_w = os.pipe()
        self.lock = threading.Lock()
        self.flushed = threading.Event()
        self.reset()
        threading.Thread(target=self.pump, daemon=True).start()

    def reset(self) -> None:
        with self.lock:
            self.captures = {1: Capture(self.half), 2: Capture(self.half)}

    def pump(self) -> None:
        poller = select.poll()
        for fd in (*self.pipes, self.wake_r):
            poller.register(fd, select.POLLIN)
        while True:
            for fd, _event in poller.poll():
                if fd == self.wake_r:
                    os.read(self.wake_r, 1)
                    self.drain()
                    self.flushed.set()
                else:
                    self.read(fd)

    def read(self, fd: int) -> int:
        data = os.read(fd, 65536)
        with self.lock:
            self.captures[self.pipes[fd]].add(data)
        return len(data)

    def drain(self) -> None:
        """Read whatever the pipes hold now, without blocking."""
        for fd in self.pipes:
            while select.select([fd], [], [], 0)[0] and self.read(fd):
                pass

    def collect(self) -> tuple[str, str, bool]:
        """Wait until everything written so far is read, then hand back the two streams."""
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # user code may have replaced or closed them
                stream.flush()
        self.flushed.clear()
        os.write(self.wake_w, b"x")
        self.flushed.wait()
        with self.lock:
            out, err = self.captures[1], self.captures[2]
            self.captures = {1: Capture(self.half), 2: Capture(self.half)}
        return out.text(), err.text(), bool(out.dropped or err.dropped)


def cap(text: str | None, half: int) -> str | None:
    """Keep the head and tail of a long result or traceback."""
    if text is None or len(text) <= 2 * half:
        return text
    return f"{text[:half]}\n[... {len(text) - 2 * half} characters truncated ...]\n{text[-half:]}"


class Kernel:
    """Runs cells in one namespace and shows the value of a trailing expression."""

    def __init__(self, half: int) -> None:
        self.half = half
        self.cells = 0
        self.running = False
        self.interrupted = False
        self.namespace: dict = {"__name__": "__main__", "__builtins__": __builtins__}

    def on_interrupt(self, *_: object) -> None:
        if self.running:
            self.interrupted = True
            raise KeyboardInterrupt

    def run(self, code: str) -> tuple[str | None, str | None]:
        """Return (repr of the trailing expression or None, traceback text or None)."""
        self.cells += 1
        name = f"<cell-{self.cells}>"
        linecache.cache[name] = (len(code), None, code.splitlines(True), name)
        try:
            tree = ast.parse(code, name)
            last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
            body = compile(tree, name, "exec")
            tail = last and compile(ast.Expression(last.value), name, "eval")
        except SyntaxError as exc:
            return None, "".join(traceback.format_exception_only(type(exc), exc))
        self.running = True
        try:
            exec(body, self.namespace)
            value = eval(tail, self.namespace) if tail else None
            return (None if value is None else repr(value)), None
        except BaseException as exc:  # the cell's own failure, shown as a notebook shows it
            tb = exc.__traceback__.tb_next  # drop this frame: the user wrote the rest
            return None, "".join(traceback.format_exception(type(exc), exc, tb))
        finally:
            self.running = False


def serve(half: int) -> None:
    """Answer framed requests until the host closes stdin."""
    requests = os.fdopen(os.dup(0), "rb", buffering=0)
    replies = os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    output = Output(half)
    # Line-buffered so prints interleave with subprocess output; they live as long as the kernel.
    sys.stdout = open(1, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
    kernel = Kernel(half)
    signal.signal(signal.SIGINT, kernel.on_interrupt)

    def send(message: dict) -> None:
        data = json.dumps(message).encode()
        os.write(replies, HEADER.pack(len(data)) + data)

    def receive() -> dict | None:
        header = read_exactly(requests, HEADER.size)
        return json.loads(read_exactly(requests, HEADER.unpack(header)[0])) if header else None

    pid = os.getpid()
    send({"ready": pid})
    while (request := receive()) is not None:
        output.reset()
        result, error = kernel.run(request["code"])
        if os.getpid() != pid:  # a child forked by the cell must not answer the host
            os._exit(0)
        if kernel.interrupted:
            kill_others()
            kernel.interrupted = False
        stdout, stderr, truncated = output.collect()
        result, error = cap(result, half), cap(error, half)
        truncated = truncated or len(result or "") + len(error or "") > 4 * half + 200
        send(
            {
                "stdout": stdout,
                "stderr": stderr,
                "result": result,
                "error": error,
                "truncated": truncated,
            }
        )


def read_exactly(stream, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = stream.read(size - len(data))
        if not chunk:
            return b""
        data += chunk
    return data


if __name__ == "__main__":
    if sys.argv[1] == "init":
        init()
    else:
        serve(int(sys.argv[2]) // 2)
