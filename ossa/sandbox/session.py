"""Stateful python sessions, one hardened container each, driven over a `docker exec` pipe.

The host enforces every limit it can: the per-call timeout (interrupt, then kill and restart),
the size of each reply, and the detection of an out-of-memory kill. Nothing here ever runs the
code on the host: without a daemon or an image, opening a session raises SandboxUnavailable.
"""

from __future__ import annotations

import contextlib
import json
import posixpath
import queue
import socket
import struct
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

import docker
from docker.utils.socket import STDOUT, frames_iter

from ossa.sandbox.container import (
    DATA_DIR,
    KERNEL_SOURCE,
    USER,
    Limits,
    create_options,
    remove_orphans,
)
from ossa.sandbox.errors import SandboxError, SandboxUnavailable
from ossa.sandbox.image import image_exists

HEADER = struct.Struct(">I")
START_TIMEOUT = 30.0  # seconds for a new kernel to say it is ready
INTERRUPT_GRACE = 2.0  # seconds an interrupted cell gets to stop before the kernel is killed
OOM_SETTLE = 2.0  # seconds to wait for a dying sandbox to show whether memory killed it
KEPT_FILES = "the kernel was restarted: variables and imports were lost, files in /mnt/data kept"
LOST_FILES = "the sandbox was restarted: variables, imports and files in /mnt/data were lost"

_orphans_removed = False
_orphans_lock = threading.Lock()


@dataclass
class Result:
    """What one call produced. `result` is the repr of a trailing expression, as in a notebook."""

    stdout: str = ""
    stderr: str = ""
    result: str | None = None
    error: str | None = None
    timed_out: bool = False
    oom_killed: bool = False
    restarted: bool = False
    truncated: bool = False
    duration_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def connect(limits: Limits) -> docker.DockerClient:
    """A client for a daemon that can run `limits`, or SandboxUnavailable saying what is missing."""
    try:
        client = docker.from_env(timeout=60)
        client.ping()
    except Exception as exc:
        raise SandboxUnavailable(
            f"no Docker daemon answers ({exc}). Start one (as root: `bash scripts/start-dockerd.sh`, "
            "or your system's docker service); the python sandbox never runs code on the host."
        ) from exc
    if not image_exists(client, limits.image):
        raise SandboxUnavailable(
            f"the sandbox image {limits.image} is missing: build it with `ossa sandbox build`"
        )
    if limits.runtime and limits.runtime not in client.info().get("Runtimes", {}):
        raise SandboxUnavailable(
            f"the container runtime {limits.runtime!r} is not registered with Docker. For gVisor "
            "run `bash scripts/install-runsc.sh` (adds runsc to /etc/docker/daemon.json)."
        )
    global _orphans_removed
    with _orphans_lock:
        if not _orphans_removed:
            remove_orphans(client)
            _orphans_removed = True
    return client


class _Kernel:
    """One kernel process: requests go to the exec's stdin, a thread reads framed replies."""

    def __init__(self, client: docker.DockerClient, container_id: str, max_output: int) -> None:
        command = ["python3", "-I", "-c", KERNEL_SOURCE, "kernel", str(max_output)]
        exec_id = client.api.exec_create(
            container_id, command, stdin=True, user=USER, workdir=DATA_DIR
        )["Id"]
        self.stream = client.api.exec_start(exec_id, socket=True)
        self.socket: socket.socket = getattr(self.stream, "_sock", self.stream)
        self.socket.settimeout(None)  # a cell may run silently for longer than the API timeout
        # A reply holds two capped streams, a capped result and a capped traceback, JSON-escaped.
        self.max_frame = 64 * max_output + 65536
        self.replies: queue.Queue[dict | None] = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        """Turn the kernel's stdout into replies; None marks its end (exit, crash or garbage)."""
        buffer = bytearray()
        try:
            for stream, data in frames_iter(self.stream, tty=False):
                if stream != STDOUT:
                    continue  # the kernel's own stderr: only a crash writes there
                buffer += data
                while len(buffer) >= HEADER.size:
                    (size,) = HEADER.unpack_from(buffer)
                    if size > self.max_frame:
                        return
                    if len(buffer) < HEADER.size + size:
                        break
                    self.replies.put(json.loads(buffer[HEADER.size : HEADER.size + size]))
                    del buffer[: HEADER.size + size]
        except (OSError, ValueError):
            pass
        finally:
            self.replies.put(None)

    @property
    def alive(self) -> bool:
        return self.reader.is_alive()

    def send(self, message: dict) -> None:
        data = json.dumps(message).encode()
        with contextlib.suppress(OSError):  # the kernel is gone; the reader reports it
            self.socket.sendall(HEADER.pack(len(data)) + data)

    def receive(self, timeout: float) -> dict | None:
        """The next reply, None if the kernel ended; queue.Empty after `timeout` seconds."""
        return self.replies.get(timeout=timeout)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.socket.shutdown(socket.SHUT_RDWR)
        self.stream.close()


class Session:
    """A python notebook in its own container; use `open_session` to make one."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._lock = threading.Lock()
        self._client: docker.DockerClient | None = None
        self._container: Any = None
        self._kernel: _Kernel | None = None
        self._oom_kills = 0
        self._closing = False

    def start(self) -> Session:
        self._client = connect(self.limits)
        try:
            self._container = self._client.containers.create(**create_options(self.limits))
            self._container.start()
            self._start_kernel()
        except docker.errors.DockerException as exc:
            self.close()
            raise SandboxError(f"could not start the sandbox: {exc}") from exc
        except BaseException:
            self.close()
            raise
        return self

    @property
    def container_id(self) -> str | None:
        return self._container.id if self._container is not None else None

    def run(self, code: str, timeout: float | None = None) -> Result:
        """Run `code` in the session's namespace; stops it after `timeout` (default the limit's)."""
        if not isinstance(code, str):
            raise TypeError(f"code must be a str, not {type(code).__name__}")
        timeout = self.limits.timeout if timeout is None else timeout
        with self._lock:
            if self._container is None:
                raise SandboxError("the session is closed")
            try:
                return self._run(code, timeout)
            except docker.errors.DockerException as exc:
                if self._closing:
                    raise SandboxError("the session was closed during the call") from exc
                raise SandboxError(f"the sandbox failed: {exc}") from exc

    def put_file(self, name: str, data: bytes) -> None:
        """Write `data` to /mnt/data/`name` (subdirectories are made)."""
        script = (
            "import os,sys;p=sys.argv[1];os.makedirs(os.path.dirname(p),exist_ok=True);"
            "open(p,'wb').write(sys.stdin.buffer.read())"
        )
        self._exec_file_op(script, name, data)

    def get_file(self, name: str) -> bytes:
        """The contents of /mnt/data/`name`."""
        script = "import sys;sys.stdout.buffer.write(open(sys.argv[1],'rb').read())"
        return self._exec_file_op(script, name, b"")

    def close(self) -> None:
        """Remove the container and with it everything in /mnt/data.

        Safe from another thread during a call: that call then raises SandboxError.
        """
        self._closing = True
        if self._container is not None:
            with contextlib.suppress(docker.errors.NotFound):
                self._container.remove(force=True)
        with self._lock:
            if self._kernel is not None:
                self._kernel.close()
                self._kernel = None
            self._container = None
            if self._client is not None:
                self._client.close()
                self._client = None

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- kernel lifecycle -------------------------------------------------------------------

    def _start_kernel(self) -> _Kernel:
        kernel = _Kernel(self._client, self._container.id, self.limits.max_output)
        try:
            hello = kernel.receive(START_TIMEOUT)
        except queue.Empty:
            hello = None
        if not hello or "ready" not in hello:
            kernel.close()
            raise SandboxError(f"the sandbox kernel did not start in {self._container.name}")
        self._kernel = kernel
        return kernel

    def _run(self, code: str, timeout: float) -> Result:
        restarted = self._kernel is None or not self._kernel.alive
        if restarted:
            self._restart()
        kernel = self._kernel
        started = time.monotonic()
        kernel.send({"code": code})
        try:
            reply = self._wait(kernel, timeout)
        except queue.Empty:
            result = self._stop_runaway(kernel, timeout)
        else:
            result = self._reply_to_result(reply) if reply else self._after_death()
        result.restarted = result.restarted or restarted
        result.duration_s = round(time.monotonic() - started, 4)
        return result

    def _restart(self) -> str:
        """Kill every process in the container and start a kernel; say what was lost.

        The container, and so /mnt/data, is kept unless it died or will not come clean.
        """
        if self._kernel is not None:
            self._kernel.close()
            self._kernel = None
        self._container.reload()
        lost = KEPT_FILES
        if self._container.status != "running":  # the runtime itself died (e.g. gVisor OOM)
            self._container.start()
            lost = LOST_FILES
        else:
            self._container.kill(signal="SIGUSR1")  # PID 1 kills the rest, without forking
            deadline = time.monotonic() + 10
            while len(self._container.top()["Processes"] or []) > 1:
                if time.monotonic() > deadline:
                    self._container.restart(timeout=0)
                    lost = LOST_FILES
                    break
                time.sleep(0.05)
        if lost == LOST_FILES:
            self._oom_kills = 0  # a new cgroup counts from zero
        self._start_kernel()
        return lost

    def _wait(self, kernel: _Kernel, timeout: float) -> dict | None:
        """The kernel's reply, None if it or its container died; queue.Empty after `timeout`.

        The container is checked every second: under gVisor the exec stream can outlive a
        sandbox killed for memory, so its end alone does not tell.
        """
        deadline = time.monotonic() + timeout
        while True:
            try:
                return kernel.receive(max(0.0, min(1.0, deadline - time.monotonic())))
            except queue.Empty:
                if time.monotonic() >= deadline:
                    raise
                self._container.reload()
                if self._container.status != "running":
                    return None

    def _stop_runaway(self, kernel: _Kernel, timeout: float) -> Result:
        """Interrupt a call past its timeout; if it will not stop, restart the kernel."""
        note = f"Timed out after {timeout:g} s"
        self._container.kill(signal="SIGUSR2")  # PID 1 sends SIGINT to every process
        try:
            reply = kernel.receive(INTERRUPT_GRACE)
        except queue.Empty:
            reply = None
        if reply:
            result = self._reply_to_result(reply)
            result.error = f"{result.error or ''}{note}; the call was interrupted (state kept)."
        else:
            lost = self._restart()
            result = Result(error=f"{note} and did not stop when interrupted; {lost}.")
            result.restarted = True
        result.timed_out = True
        return result

    def _after_death(self) -> Result:
        """The kernel ended mid-call: say why (memory, most often) and bring up a fresh one."""
        oom = self._died_of_oom()
        lost = self._restart()
        cause = f"ran out of memory (limit {self.limits.memory})" if oom else "died"
        return Result(error=f"The kernel {cause}; {lost}.", oom_killed=oom, restarted=True)

    def _died_of_oom(self) -> bool:
        """Whether memory killed the kernel. Under gVisor the whole sandbox goes down, and
        for a moment it can still look running: wait for either sign before saying no."""
        deadline = time.monotonic() + OOM_SETTLE
        while True:
            self._container.reload()
            if self._container.status != "running":
                return bool(self._container.attrs["State"].get("OOMKilled", False))
            try:
                kills = self._read_oom_kills()
            except docker.errors.APIError:  # it stopped between the two looks
                kills = self._oom_kills
            if kills > self._oom_kills or time.monotonic() >= deadline:
                oom, self._oom_kills = kills > self._oom_kills, kills
                return oom
            time.sleep(0.2)

    def _read_oom_kills(self) -> int:
        """The container's cgroup count of out-of-memory kills (cgroup v1 or v2)."""
        files = ["/sys/fs/cgroup/memory/memory.oom_control", "/sys/fs/cgroup/memory.events"]
        code, out, _err = self._exec(["cat", *files])
        for line in out.decode(errors="replace").splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                return int(value)
        return self._oom_kills

    def _reply_to_result(self, reply: dict) -> Result:
        """Build a Result from a reply, trusting no field's type (code could forge a reply)."""

        def text(key: str) -> str | None:
            value = reply.get(key)
            return value if isinstance(value, str) else None

        return Result(
            stdout=text("stdout") or "",
            stderr=text("stderr") or "",
            result=text("result"),
            error=text("error"),
            truncated=reply.get("truncated") is True,
        )

    # -- files ------------------------------------------------------------------------------

    def _exec_file_op(self, script: str, name: str, data: bytes) -> bytes:
        path = _data_path(name)
        with self._lock:
            if self._container is None:
                raise SandboxError("the session is closed")
            code, out, err = self._exec(["python3", "-I", "-c", script, path], data)
        if code != 0:
            reason = err.decode(errors="replace").strip().splitlines()[-1:] or [f"exit {code}"]
            raise SandboxError(f"{path}: {reason[0]}")
        return out

    def _exec(self, command: list[str], stdin: bytes = b"") -> tuple[int, bytes, bytes]:
        """Run a helper command in the container as the sandbox user, feeding it `stdin`."""
        api = self._client.api
        exec_id = api.exec_create(self._container.id, command, stdin=True, user=USER)["Id"]
        stream = api.exec_start(exec_id, socket=True)
        raw = getattr(stream, "_sock", stream)
        try:
            raw.sendall(stdin)
            raw.shutdown(socket.SHUT_WR)
            out, err = bytearray(), bytearray()
            for kind, chunk in frames_iter(stream, tty=False):
                (out if kind == STDOUT else err).extend(chunk)
        finally:
            stream.close()
        return api.exec_inspect(exec_id)["ExitCode"], bytes(out), bytes(err)


def _data_path(name: str) -> str:
    """`name` as a path under /mnt/data; absolute paths are accepted only inside it."""
    path = posixpath.normpath(posixpath.join(DATA_DIR, name))
    if not name or not path.startswith(DATA_DIR + "/"):
        raise ValueError(f"file name {name!r} is not inside {DATA_DIR}")
    return path


def open_session(**limits: Any) -> Session:
    """Start a sandbox session; keyword arguments are the fields of `Limits`."""
    return Session(Limits(**limits)).start()
