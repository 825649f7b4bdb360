"""The in-container side of a sandbox session: plain stdlib Python, passed in with `python3 -c`.

Two kinds of process, so that the code a cell runs never holds the host's channel:

- The **supervisor** is the container's PID 1. It starts as root with only the capabilities to
  change uid, drop capabilities and send signals (SETUID, SETGID, SETPCAP, KILL), and it alone
  holds the channel to the host: its stdin and stdout, attached through Docker. Everything else
  runs as nobody, and nobody can neither signal nor ptrace a root process, nor open its fds in
  /proc, under runc and under gVisor alike (gVisor lets a same-uid process stop PID 1 and open
  /proc/1/fd even when PID 1 is not dumpable, so a same-uid supervisor would not do). It relays
  each request to the worker and checks the worker's answer (size, shape, the request's id)
  before passing it on; enforces the call's timeout (SIGINT, then a restart); and before each
  call (and half a second after one, when idle) kills every process but the worker, so nothing
  a cell left behind can read the next request or answer in the worker's place.
- The **worker** is forked by the supervisor with nothing but two pipes to it, in a session of
  its own, drops to nobody with no capabilities, and runs cells in one namespace like a
  notebook. Its stdout and stderr are pipes drained by a thread that keeps a head and a tail.

A frame, in both directions, is an 8-byte header (JSON length, blob length), a JSON object and
an optional raw blob (a file's contents). Every reader refuses a frame over its limits before
buffering it, and anything that is not a JSON object is a protocol error, never a crash. A run
request with ``stream`` set is answered by progress frames (its id and ``progress``: output
text, coalesced and capped) while the cell runs, then by its reply as without them.
"""

from __future__ import annotations

import ast
import codecs
import contextlib
import ctypes
import errno
import json
import linecache
import os
import select
import signal
import stat
import struct
import sys
import threading
import time
import traceback

HEADER = struct.Struct(">II")
DATA_DIR = "/mnt/data"
NOBODY = 65534
MAX_REQUEST = 8 << 20  # bytes of JSON in one request: the code of a cell, encoded
READ_SIZE = 1 << 20
INTERRUPT_GRACE = 2.0  # seconds an interrupted call gets to stop before the worker is killed
PROGRESS_SECONDS = 0.1  # a running cell's output goes to the host at most this often...
PROGRESS_BYTES = 8192  # ...unless this much has gathered
PROGRESS_FRAMES = 4096  # progress frames relayed for one call, at most (forged ones included)
LATE_REPLIES = 4  # late replies dropped in one call before the worker counts as forging
SWEEP_PASSES = 100  # rounds of killing strays before giving up and restarting the worker
IDLE_SWEEP = 0.5  # seconds after a reply, if no call came, to kill what the last call left
OOM_FILES = ("/sys/fs/cgroup/memory.events", "/sys/fs/cgroup/memory/memory.oom_control")
PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24


def max_reply(max_output: int) -> int:
    """The largest reply a worker may send: two capped streams and a capped result and
    traceback, JSON-escaped (up to 12 bytes a character)."""
    return 64 * max_output + 65536


# -- frames -------------------------------------------------------------------------------


class ProtocolError(ValueError):
    """A frame that breaks the protocol: over a limit, not UTF-8 JSON, or not a JSON object."""


def pack(message: dict, blob_size: int = 0) -> bytes:
    """The header and JSON of a frame; its blob of `blob_size` bytes is sent right after."""
    data = json.dumps(message).encode()
    return HEADER.pack(len(data), blob_size) + data


class Frames:
    """Splits a byte stream into (message, blob) frames.

    A frame's sizes are checked as soon as its header is in, so nothing over the limits is
    ever buffered; callers take every complete frame after each feed, so at most one frame
    and one read are held.
    """

    def __init__(self, max_json: int, max_blob: int) -> None:
        self.max_json = max_json
        self.max_blob = max_blob
        self.buffer = bytearray()

    def feed(self, data: bytes) -> None:
        self.buffer += data

    def take(self) -> tuple[dict, bytes] | None:
        if len(self.buffer) < HEADER.size:
            return None
        size, blob_size = HEADER.unpack_from(self.buffer)
        if size > self.max_json or blob_size > self.max_blob:
            raise ProtocolError(f"a frame of {size} + {blob_size} bytes is over the limit")
        end = HEADER.size + size
        if len(self.buffer) < end + blob_size:
            return None
        try:
            message = json.loads(self.buffer[HEADER.size : end].decode("utf-8"))
        except (ValueError, RecursionError) as exc:  # ValueError covers UnicodeDecodeError
            raise ProtocolError(f"a frame is not JSON ({exc.__class__.__name__})") from None
        if not isinstance(message, dict):
            raise ProtocolError(f"a frame is a JSON {type(message).__name__}, not an object")
        blob = bytes(self.buffer[end : end + blob_size])
        del self.buffer[: end + blob_size]
        return message, blob


def write_all(fd: int, *parts: bytes) -> None:
    for part in parts:
        view = memoryview(part)
        while view:
            view = view[os.write(fd, view) :]


# -- the worker ---------------------------------------------------------------------------


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
    """Drains the stdout/stderr pipes on a thread so user code never blocks on a full pipe.

    The thread reads only while it holds the lock, and `collect` drains what is left under the
    same lock, so no byte can be read but not yet stored when a call's output is handed back
    (and no signalling pipe exists that a cell could fill with false wake-ups).

    While a cell runs, the thread also sends what it read to the supervisor as progress frames
    (the call's id, ``progress``: the text), at most every PROGRESS_SECONDS unless
    PROGRESS_BYTES gathered, and no more than the output cap in all; the final reply stays the
    call's authoritative output. Frames go out under the lock, and `collect` ends the streaming
    under it, so every progress frame precedes the reply.
    """

    def __init__(self, half: int, replies: int) -> None:
        self.half = half
        self.replies = replies
        self.pipes = {}
        for fd in (1, 2):
            read_end, write_end = os.pipe()
            os.dup2(write_end, fd)
            os.close(write_end)
            os.set_blocking(read_end, False)
            self.pipes[read_end] = fd
        self.lock = threading.Lock()
        self.reset()
        threading.Thread(target=self.pump, daemon=True).start()

    def reset(self, request_id: object = None) -> None:
        """Start a call's capture; its output streams as progress if `request_id` is given."""
        with self.lock:
            self.captures = {1: Capture(self.half), 2: Capture(self.half)}
            self.streaming = request_id
            self.decoders = {fd: codecs.getincrementaldecoder("utf-8")("replace") for fd in (1, 2)}
            self.pending = ""
            self.budget = 2 * self.half  # bytes of text a call may stream
            self.last_sent = 0.0

    def pump(self) -> None:
        poller = select.poll()
        for fd in self.pipes:
            poller.register(fd, select.POLLIN)
        while True:
            wait = None
            if self.pending:
                wait = max(0, int((self.last_sent + PROGRESS_SECONDS - time.monotonic()) * 1000))
            poller.poll(wait)
            with self.lock:
                for fd in self.drain():
                    poller.unregister(fd)  # every writer closed it (the cell closed fd 1 or 2)
                self.send_progress()

    def drain(self) -> list[int]:
        """Store what the pipes hold now, up to 4 MB each; return the pipes at their end."""
        ended = []
        for fd, stream in self.pipes.items():
            for _ in range(64):
                try:
                    data = os.read(fd, 65536)
                except BlockingIOError:
                    break
                if not data:
                    ended.append(fd)
                    break
                self.captures[stream].add(data)
                if self.streaming is not None and self.budget > 0:
                    data = data[: self.budget]
                    self.budget -= len(data)
                    self.pending += self.decoders[stream].decode(data)
        return ended

    def send_progress(self) -> None:
        """Send the gathered text if it is due (called with the lock held)."""
        now = time.monotonic()
        if not self.pending or (
            len(self.pending) < PROGRESS_BYTES and now < self.last_sent + PROGRESS_SECONDS
        ):
            return
        text, self.pending, self.last_sent = self.pending, "", now
        with contextlib.suppress(OSError):  # the supervisor went away: the worker ends anyway
            write_all(self.replies, pack({"id": self.streaming, "progress": text}))

    def collect(self) -> tuple[str, str, bool]:
        """Everything written so far to the two streams (as the capture keeps it)."""
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # user code may have replaced or closed them
                stream.flush()
        with self.lock:
            self.drain()
            out, err = self.captures[1], self.captures[2]
            self.captures = {1: Capture(self.half), 2: Capture(self.half)}
            self.streaming, self.pending = None, ""  # the reply carries the rest
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
        self.namespace: dict = {"__name__": "__main__", "__builtins__": __builtins__}

    def on_interrupt(self, *_: object) -> None:
        if self.running:
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
        except (SyntaxError, ValueError) as exc:  # ValueError: a NUL byte in the source
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


def open_in_data(path: str, flags: int, make_dirs: bool = False) -> int:
    """Open the regular file `path` (relative to /mnt/data) without following any link.

    Each component is looked at without following it and opened relative to the last, so a
    link planted by a cell cannot lead a transfer outside /mnt/data; O_NONBLOCK keeps a FIFO
    swapped in meanwhile from blocking (the callers check the opened file once more).
    """
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise OSError(errno.EINVAL, "not a plain path inside /mnt/data")
    directory = os.open(DATA_DIR, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            if make_dirs and not last:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=directory)
            try:
                mode = os.stat(part, dir_fd=directory, follow_symlinks=False).st_mode
            except FileNotFoundError:
                mode = None
            if mode is not None and stat.S_ISLNK(mode):
                raise OSError(errno.ELOOP, "a symbolic link")
            if last:
                if mode is not None and not stat.S_ISREG(mode):
                    raise OSError(errno.EINVAL, "not a regular file")
                flags |= os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
                return os.open(part, flags, 0o644, dir_fd=directory)
            inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=directory)
            os.close(directory)
            directory = inner
    finally:
        os.close(directory)
    raise AssertionError("unreachable")


def read_file(path: str, limit: int) -> bytes:
    fd = open_in_data(path, os.O_RDONLY)
    with open(fd, "rb") as file:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        data = file.read(limit + 1)
    if len(data) > limit:
        raise OSError(errno.EFBIG, f"larger than the {limit}-byte transfer limit")
    return data


def write_file(path: str, data: bytes) -> None:
    fd = open_in_data(path, os.O_WRONLY | os.O_CREAT, make_dirs=True)
    with open(fd, "wb") as file:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        file.truncate()
        file.write(data)


def describe(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "a symbolic link (transfers do not follow links)"
    return exc.strerror or str(exc)


def serve(requests: int, replies: int, half: int, max_file: int) -> None:
    """The worker: answer framed requests from the supervisor until it closes the pipe."""
    output = Output(half, replies)
    # Line-buffered so prints interleave with subprocess output and stream as they come; they
    # live as long as the kernel.
    sys.stdout = open(1, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
    kernel = Kernel(half)
    signal.signal(signal.SIGINT, kernel.on_interrupt)
    frames = Frames(MAX_REQUEST, max_file)
    pid = os.getpid()
    while True:
        while (frame := frames.take()) is None:
            data = os.read(requests, READ_SIZE)
            if not data:
                os._exit(0)
            frames.feed(data)
        request, blob = frame
        reply, blob = answer(kernel, output, request, blob, max_file)
        if os.getpid() != pid:  # a child forked by the cell must not answer
            os._exit(0)
        write_all(replies, pack(reply, len(blob)), blob)


def answer(kernel: Kernel, output: Output, request: dict, blob: bytes, max_file: int):
    """One request's reply and blob."""
    reply: dict = {"id": request.get("id")}
    op = request.get("op")
    if op == "run":
        output.reset(request.get("id") if request.get("stream") is True else None)
        result, error = kernel.run(str(request.get("code", "")))
        stdout, stderr, truncated = output.collect()
        result, error = cap(result, kernel.half), cap(error, kernel.half)
        truncated = truncated or len(result or "") + len(error or "") > 4 * kernel.half + 200
        reply.update(stdout=stdout, stderr=stderr, result=result, error=error, truncated=truncated)
        return reply, b""
    try:
        if op == "get":
            return reply, read_file(str(request.get("path")), max_file)
        write_file(str(request.get("path")), blob)
    except OSError as exc:
        reply["error"] = describe(exc)
    return reply, b""


def become_worker(requests: int, replies: int, half: int, max_file: int) -> None:
    """In the child the supervisor forked: shed everything of the supervisor's, then serve."""
    signal.set_wakeup_fd(-1)
    for number in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM):
        signal.signal(number, signal.SIG_DFL)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):  # the host's channel is the supervisor's stdin and stdout
        os.dup2(null, fd)
    for name in os.listdir("/proc/self/fd"):
        if int(name) > 2 and int(name) not in (requests, replies):
            with contextlib.suppress(OSError):
                os.close(int(name))
    os.setsid()
    with open("/proc/self/oom_score_adj", "w") as adj:  # the memory killer takes cells first
        adj.write("1000")
    libc = ctypes.CDLL(None, use_errno=True)
    cap_number = 0
    while libc.prctl(PR_CAPBSET_DROP, cap_number, 0, 0, 0) == 0:  # until past the last one
        cap_number += 1
    os.setgroups([])
    os.setresgid(NOBODY, NOBODY, NOBODY)
    os.setresuid(NOBODY, NOBODY, NOBODY)  # clears every capability
    libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)  # the uid change cleared it; cells may need /proc
    os.chdir(DATA_DIR)
    serve(requests, replies, half, max_file)


# -- the supervisor -----------------------------------------------------------------------


class Worker:
    """The supervisor's end of one worker: its pid, its two pipes, and what waits to be sent."""

    def __init__(self, half: int, max_file: int) -> None:
        request_r, self.requests = os.pipe()
        self.replies, reply_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            try:
                become_worker(request_r, reply_w, half, max_file)
            finally:
                os._exit(70)
        os.close(request_r)
        os.close(reply_w)
        os.set_blocking(self.requests, False)
        self.frames = Frames(max_reply(2 * half), max_file)
        self.outbox: list[memoryview] = []
        self.exited = False

    def close(self) -> None:
        for fd in (self.requests, self.replies):
            with contextlib.suppress(OSError):
                os.close(fd)


class Call:
    """The request being served: who asked, until when, and how it is being stopped."""

    def __init__(self, request_id: object, op: str, timeout: float, oom_kills: int | None):
        self.id = request_id
        self.op = op
        self.deadline = time.monotonic() + timeout
        self.oom_kills = oom_kills
        self.streamed = 0  # characters of progress relayed to the host
        self.progress_frames = 0
        self.stopping: str | None = None  # "timed_out" or "interrupted" once SIGINT was sent


def checked(op: str, reply: dict, blob: bytes) -> dict | None:
    """The fields of a worker's reply that the host reads, or None if any has the wrong type."""
    error = reply.get("error")
    if error is not None and not isinstance(error, str):
        return None
    if op != "run":
        return {"error": error} if op == "get" or not blob else None
    fields = {"error": error, "truncated": reply.get("truncated")}
    for key in ("stdout", "stderr", "result"):
        fields[key] = reply.get(key)
    strings = (fields["stdout"], fields["stderr"])
    if blob or not all(isinstance(text, str) for text in strings):
        return None
    if not isinstance(fields["result"], str | None) or not isinstance(fields["truncated"], bool):
        return None
    return fields


def open_oom_counter() -> int | None:
    """The cgroup file (v2 or v1) that counts the container's out-of-memory kills, kept open
    because a pread of it is 50 times cheaper than opening it for each call."""
    for path in OOM_FILES:
        with contextlib.suppress(OSError):
            return os.open(path, os.O_RDONLY)
    return None  # gVisor: a memory kill takes the whole sandbox down, and the host sees that


def process_ids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            return file.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X")
    except (OSError, IndexError):
        return True  # gone already


class Supervisor:
    """PID 1: relays between the host (fds 0 and 1) and the worker, and keeps the worker honest."""

    def __init__(self, half: int, max_file: int) -> None:
        self.half = half
        self.max_file = max_file
        self.host = Frames(MAX_REQUEST, max_file)
        self.wake_r, wake_w = os.pipe()
        for fd in (self.wake_r, wake_w):
            os.set_blocking(fd, False)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so the wakeup fd fires
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # no other handlers: PID 1 ignores the rest
        signal.set_wakeup_fd(wake_w)
        self.oom_counter = open_oom_counter()
        self.worker = Worker(half, max_file)
        self.call: Call | None = None
        self.restarted = False  # the worker was replaced since the last reply
        self.answered = 0  # the id of the last call answered (the host counts up from 1)
        self.late = 0  # late replies dropped since the last call began
        self.idle_sweep: float | None = None  # when to kill what the last call left running

    def serve(self) -> None:
        self.send_host({"id": 0, "ready": True})
        while True:
            self.step()

    def step(self) -> None:
        worker = self.worker
        poller = select.poll()
        poller.register(0, select.POLLIN)
        poller.register(self.wake_r, select.POLLIN)
        poller.register(worker.replies, select.POLLIN)
        if worker.outbox:
            poller.register(worker.requests, select.POLLOUT)
        due = self.call.deadline if self.call is not None else self.idle_sweep
        wait = None if due is None else max(0, int((due - time.monotonic()) * 1000) + 1)
        for fd, _events in poller.poll(wait):
            if worker is not self.worker:
                break  # replaced while handling an earlier event: poll again
            if fd == 0:
                self.read_host()
            elif fd == self.wake_r:
                with contextlib.suppress(OSError):
                    os.read(self.wake_r, 4096)
                self.collect()
            elif fd == worker.replies:
                self.read_worker()
            else:
                self.flush_worker()
        if self.worker.exited:
            self.worker_lost()
        if self.call is not None and time.monotonic() >= self.call.deadline:
            self.expire()
        elif self.call is None and self.idle_sweep and time.monotonic() >= self.idle_sweep:
            self.sweep()

    # host side

    def send_host(self, message: dict, blob: bytes = b"") -> None:
        write_all(1, pack(message, len(blob)), blob)

    def read_host(self) -> None:
        data = os.read(0, READ_SIZE)
        if not data:
            os._exit(0)  # the host hung up: the container ends
        self.host.feed(data)
        try:
            while (frame := self.host.take()) is not None:
                self.on_request(*frame)
        except ProtocolError:
            os._exit(2)  # the host itself is confused: end, and it starts a fresh container

    def on_request(self, request: dict, blob: bytes) -> None:
        request_id, op = request.get("id"), request.get("op")
        if op == "interrupt":
            if self.call is not None and self.call.id == request_id and not self.call.stopping:
                self.stop("interrupted")
            return
        timeout = request.get("timeout")
        if self.call is not None or op not in ("run", "get", "put"):
            self.send_host({"id": request_id, "error": f"cannot {op!r} now"})
            return
        if not isinstance(timeout, int | float) or not 0 < timeout < 1e9:
            timeout = 1e9
        self.sweep()
        self.call = Call(request_id, op, timeout, self.oom_kills())
        self.late = 0
        keys = ("id", "op", "code", "path", "stream")
        forward = {key: request[key] for key in keys if key in request}
        self.worker.outbox += [memoryview(pack(forward, len(blob))), memoryview(blob)]
        self.flush_worker()

    # worker side

    def flush_worker(self) -> None:
        worker = self.worker
        while worker.outbox:
            try:
                written = os.write(worker.requests, worker.outbox[0])
            except BlockingIOError:
                return
            except OSError:
                worker.exited = True  # it closed its end: treat as dead
                return
            worker.outbox[0] = worker.outbox[0][written:]
            if not worker.outbox[0]:
                worker.outbox.pop(0)

    def read_worker(self) -> None:
        worker = self.worker
        try:
            data = os.read(worker.replies, READ_SIZE)
        except OSError:
            data = b""
        if not data:
            worker.exited = True
            return
        worker.frames.feed(data)
        try:
            while worker is self.worker and (frame := worker.frames.take()) is not None:
                self.on_reply(*frame)
        except ProtocolError:
            self.violation()

    def on_reply(self, reply: dict, blob: bytes) -> None:
        """Pass on the reply to the call in flight. A cell can write a reply for its own call
        (it runs in the worker); the worker's real reply then comes late, and is dropped. Any
        other frame, or a flood of late ones, is a forgery: the worker is replaced."""
        call, reply_id = self.call, reply.get("id")
        if call is not None and reply_id == call.id and "progress" in reply:
            text = reply["progress"]
            if call.op != "run" or blob or len(reply) != 2 or not isinstance(text, str):
                self.violation()
            else:
                self.relay_progress(call, text)
            return
        fields = checked(call.op, reply, blob) if call and reply_id == call.id else None
        if fields is not None:
            self.finish(fields, blob)
        elif type(reply_id) is int and reply_id <= self.answered and self.late < LATE_REPLIES:
            self.late += 1
        else:
            self.violation()

    def relay_progress(self, call: Call, text: str) -> None:
        """Pass on a running cell's output, within the call's output cap and a frame count.
        A cell can write these too (it can print anyway), so what is over a bound, or comes
        once the call is being stopped, is dropped: the final reply is what the call answers."""
        room = 2 * self.half - call.streamed
        if call.stopping or room <= 0 or call.progress_frames >= PROGRESS_FRAMES:
            return
        call.progress_frames += 1
        call.streamed += min(len(text), room)
        self.send_host({"id": call.id, "progress": text[:room]})

    def violation(self) -> None:
        """The worker sent what no honest worker sends (a forgery by the cell): replace it."""
        self.restart()
        if self.call is not None:
            self.finish({"broken": True})

    def worker_lost(self) -> None:
        self.restart()
        if self.call is not None:
            self.finish({"died": True})

    # the call's life

    def stop(self, why: str) -> None:
        """SIGINT every process: the cell gets KeyboardInterrupt, its children stop."""
        self.call.stopping = why
        self.call.deadline = time.monotonic() + INTERRUPT_GRACE
        with contextlib.suppress(ProcessLookupError):
            os.kill(-1, signal.SIGINT)

    def expire(self) -> None:
        if not self.call.stopping:
            self.stop("timed_out")
        else:
            self.restart()
            self.finish({"killed": True})

    def finish(self, reply: dict, blob: bytes = b"") -> None:
        call, self.call = self.call, None
        if type(call.id) is int:
            self.answered = max(self.answered, call.id)
        after = self.oom_kills()
        reply["id"] = call.id
        reply["oom_killed"] = None not in (after, call.oom_kills) and after > call.oom_kills
        reply["restarted"] = self.restarted
        if call.stopping:
            reply[call.stopping] = True
        self.restarted = False
        self.send_host(reply, blob)
        self.idle_sweep = time.monotonic() + IDLE_SWEEP  # unless the next call comes first

    def oom_kills(self) -> int | None:
        if self.oom_counter is None:
            return None
        for line in os.pread(self.oom_counter, 4096, 0).decode().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return None

    # processes

    def collect(self) -> None:
        """Reap every exited child; note if it was the worker."""
        while True:
            try:
                pid, _status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.worker.pid:
                self.worker.exited = True

    def sweep(self) -> None:
        """Kill every process but this one and the worker, and continue the worker if there
        were any (a stray may have stopped it).

        If they will not all go (a thread of the worker forking as fast as they die), or the
        worker itself is gone, the worker is restarted too.
        """
        self.idle_sweep = None
        keep = {os.getpid(), self.worker.pid}
        found = False
        for _ in range(SWEEP_PASSES):
            strays = [pid for pid in process_ids() if pid not in keep and not is_zombie(pid)]
            if not strays:
                break
            found = True
            for pid in strays:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.collect()
        else:
            self.worker.exited = True
        if self.worker.exited:
            self.restart()
        elif found:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.worker.pid, signal.SIGCONT)

    def restart(self) -> None:
        """Kill every other process (``kill(-1)`` needs no fork, even in a fork bomb), then fork
        a fresh worker."""
        for _ in range(1000):
            try:
                os.kill(-1, signal.SIGKILL)
            except ProcessLookupError:
                break
            self.collect()
            time.sleep(0.002)
        self.collect()
        self.worker.close()
        self.worker = Worker(self.half, self.max_file)
        self.restarted = True


def supervise(max_output: int, max_file: int) -> None:
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)  # nothing reads PID 1's stderr
    os.close(null)
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    Supervisor(max_output // 2, max_file).serve()


if __name__ == "__main__":
    supervise(int(sys.argv[2]), int(sys.argv[3]))
