"""Stateful python sessions, one hardened container each, driven through its supervisor.

The host talks only to the container's PID 1 (kernel.py), which relays to the process running
the cells; a cell can reach neither end of that channel. The host bounds everything on its
side by itself: each call has a deadline that covers every send, receive and lock wait (the
timeout, the supervisor's grace to stop the cell, and a margin), every frame has a size limit,
and a container that stops answering is replaced. Nothing here ever runs the code on the host:
without a daemon or an image, opening a session raises SandboxUnavailable.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import posixpath
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import docker
import requests

from ossa.sandbox import exits
from ossa.sandbox.channel import Channel, ChannelError, ChannelTimeout
from ossa.sandbox.container import DATA_DIR, Limits, create_options, remove_orphans
from ossa.sandbox.errors import SandboxError, SandboxUnavailable
from ossa.sandbox.image import image_exists
from ossa.sandbox.kernel import INTERRUPT_GRACE, MAX_REQUEST, max_reply

START_TIMEOUT = 30.0  # seconds for a (re)started container's supervisor to say it is ready
SUPERVISOR_SLACK = 10.0  # seconds, past the grace, for the supervisor to restart a worker
OOM_SETTLE = 2.0  # seconds to wait for a dying sandbox to show whether memory killed it
SIGKILLED = 128 + 9  # a container's exit status when SIGKILL ended its first process
DOCKER_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException)
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
    interrupted: bool = False
    oom_killed: bool = False
    restarted: bool = False
    truncated: bool = False
    duration_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def connect(limits: Limits) -> docker.DockerClient:
    """A client for a daemon that can run `limits`, or SandboxUnavailable saying what is missing."""
    try:
        client = docker.from_env(timeout=START_TIMEOUT)
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
    exits.install()
    global _orphans_removed
    with _orphans_lock:
        if not _orphans_removed:
            remove_orphans(client)
            _orphans_removed = True
    return client


class Session:
    """A python notebook in its own container; use `open_session` to make one.

    Thread-safe: calls on one session run one at a time, `interrupt` and `close` may come from
    any thread. A call returns within its timeout plus INTERRUPT_GRACE and SUPERVISOR_SLACK, or
    START_TIMEOUT more when the container itself must be replaced.
    """

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._lock = threading.Lock()  # one call at a time
        self._send_lock = threading.Lock()  # one frame at a time on the channel
        self._client: docker.DockerClient | None = None
        self._container: Any = None
        self._channel: Channel | None = None  # None when broken: the next call replaces it
        self._ids = itertools.count(1)
        self._current: int | None = None  # the id of the call in flight
        self._interrupt_wanted = False
        self._closing = False

    def start(self) -> Session:
        self._client = connect(self.limits)
        try:
            exits.track(self)
            self._container = self._client.containers.create(**create_options(self.limits))
            self._boot()
        except DOCKER_ERRORS as exc:
            self.close()
            raise SandboxError(f"could not start the sandbox: {exc}") from exc
        except BaseException:
            self.close()
            raise
        return self

    @property
    def container_id(self) -> str | None:
        return self._container.id if self._container is not None else None

    def run(
        self,
        code: str,
        timeout: float | None = None,
        on_output: Callable[[str], None] | None = None,
    ) -> Result:
        """Run `code` in the session's namespace; stops it after `timeout` (default the limit's).

        `on_output`, if given, is called on this thread with the cell's stdout and stderr text
        as it is produced (coalesced, at most `max_output` characters in all); the Result
        still holds the call's whole output, capped as without it.
        """
        if not isinstance(code, str):
            raise TypeError(f"code must be a str, not {type(code).__name__}")
        timeout = self.limits.timeout if timeout is None else timeout
        if len(code) * 12 > MAX_REQUEST and len(json.dumps(code)) > MAX_REQUEST - 1024:
            return Result(
                error=f"The code is too long to send: {len(code)} characters "
                f"(the limit is {MAX_REQUEST >> 20} MiB of JSON)."
            )
        started = time.monotonic()
        request: dict[str, Any] = {"op": "run", "code": code}
        if on_output is not None:
            request["stream"] = True
        reply, _blob = self._call(request, b"", timeout, on_output)
        result = self._result(reply, timeout)
        result.duration_s = round(time.monotonic() - started, 4)
        return result

    def interrupt(self) -> bool:
        """Stop the call in flight, from any thread or a signal handler (Ctrl-C in a chat).

        The cell gets KeyboardInterrupt and the call returns with `interrupted` set; a cell that
        does not stop within INTERRUPT_GRACE has its kernel restarted, and the result says so.
        Returns whether a call was in flight.
        """
        request_id, channel = self._current, self._channel
        if request_id is None or channel is None:
            return False
        if not self._send_lock.acquire(blocking=False):  # the request itself is being sent
            self._interrupt_wanted = True
            return True
        try:
            channel.send({"id": request_id, "op": "interrupt"}, b"", time.monotonic() + 5)
        except ChannelError:
            pass  # the call itself notices a dead channel
        finally:
            self._send_lock.release()
        return True

    def put_file(self, name: str, data: bytes, timeout: float | None = None) -> None:
        """Write `data` to /mnt/data/`name` (subdirectories are made; links are not followed)."""
        path = _data_path(name)
        if len(data) > self.limits.file_size:
            raise SandboxError(
                f"{path}: {len(data)} bytes is over the {self.limits.file_size}-byte file limit"
            )
        self._transfer({"op": "put", "path": path}, bytes(data), timeout)

    def get_file(self, name: str, timeout: float | None = None) -> bytes:
        """The contents of /mnt/data/`name`: a regular file within the file size limit."""
        return self._transfer({"op": "get", "path": _data_path(name)}, b"", timeout)

    def close(self) -> None:
        """Remove the container and with it everything in /mnt/data.

        Safe from another thread during a call: that call then raises SandboxError.
        """
        self._closing = True
        channel = self._channel
        self._remove_container()
        if channel is not None:
            channel.close()  # wakes a call waiting on it
        with self._lock:
            self._remove_container()  # one that a recovery made meanwhile
            self._channel = None
            if self._client is not None:
                self._client.close()
                self._client = None

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- one call ---------------------------------------------------------------------------

    def _call(
        self,
        request: dict,
        blob: bytes,
        timeout: float,
        on_output: Callable[[str], None] | None = None,
    ) -> tuple[dict, bytes]:
        """Send `request` and return the supervisor's reply, all within the call's deadline.

        When the container itself fails (stops answering, dies, breaks the protocol) it is
        replaced and the reply says why under the key "sandbox".
        """
        bound = timeout + INTERRUPT_GRACE + SUPERVISOR_SLACK
        if not self._lock.acquire(timeout=bound):
            raise SandboxError("the session is busy: another call on it did not end in time")
        try:
            if self._container is None:
                raise SandboxError("the session is closed")
            replaced = self._channel is None
            if replaced:
                self._recover()
            deadline = time.monotonic() + bound
            reply, data = self._exchange(request, blob, timeout, deadline, on_output)
            if "sandbox" in reply:
                self._recover()
            reply["restarted"] = replaced or "sandbox" in reply or reply.get("restarted") is True
            return reply, data
        except DOCKER_ERRORS as exc:
            if self._closing:
                raise SandboxError("the session was closed during the call") from exc
            raise SandboxError(f"the sandbox failed: {exc}") from exc
        finally:
            self._lock.release()

    def _exchange(
        self,
        request: dict,
        blob: bytes,
        timeout: float,
        deadline: float,
        on_output: Callable[[str], None] | None,
    ) -> tuple[dict, bytes]:
        channel = self._channel
        request_id = next(self._ids)
        request.update(id=request_id, timeout=timeout)
        self._interrupt_wanted = False
        self._current = request_id
        sent = False
        try:
            with self._send_lock:
                channel.send(request, blob, deadline)
                sent = True
            if self._interrupt_wanted:
                self.interrupt()
            return self._reply(channel, request_id, deadline, on_output)
        except ChannelTimeout:
            return {"sandbox": "unresponsive"}, b""
        except ChannelError:
            if self._closing:
                raise SandboxError("the session was closed during the call") from None
            return {"sandbox": "died", "oom_killed": self._container_oom()}, b""
        except BaseException:  # Ctrl-C in this thread, or raised by on_output
            self._stop_mid_call(request_id, sent)
            raise
        finally:
            self._current = None

    def _reply(
        self,
        channel: Channel,
        request_id: int,
        deadline: float,
        on_output: Callable[[str], None] | None,
    ) -> tuple[dict, bytes]:
        """The reply to `request_id`, passing the progress frames before it to `on_output`
        (up to the output cap in all: the supervisor bounds them too, but trusts no one)."""
        room = self.limits.max_output
        while True:
            reply, data = channel.receive(deadline)
            if reply.get("id") != request_id:
                raise ChannelError(f"the sandbox answered request {reply.get('id')!r} out of turn")
            if "progress" not in reply:
                return reply, data
            text = reply["progress"]
            if on_output is not None and isinstance(text, str) and room > 0 and not data:
                text = text[:room].encode("utf-8", "backslashreplace").decode()
                room -= len(text)
                on_output(text)

    def _stop_mid_call(self, request_id: int, sent: bool) -> None:
        """Ctrl-C (or on_output raising) ended the call on this thread: stop the cell so the next
        call starts clean; if that cannot be confirmed in time, the next call replaces the
        container."""
        try:
            if not sent:
                raise ChannelError("the request was cut off")
            with self._send_lock:
                deadline = time.monotonic() + INTERRUPT_GRACE + SUPERVISOR_SLACK
                self._channel.send({"id": request_id, "op": "interrupt"}, b"", deadline)
            self._reply(self._channel, request_id, deadline, None)
        except (ChannelError, KeyboardInterrupt):
            self._channel.close()
            self._channel = None

    def _result(self, reply: dict, timeout: float) -> Result:
        """The call's Result, trusting no field's type; the sandbox's own events in words."""

        def text(key: str) -> str | None:
            value = reply.get(key)
            if not isinstance(value, str):
                return None
            try:
                value.encode()
            except UnicodeEncodeError:  # a lone surrogate: shown as its escape, never lost
                value = value.encode("utf-8", "backslashreplace").decode()
            return value

        def flag(key: str) -> bool:
            return reply.get(key) is True

        result = Result(
            stdout=text("stdout") or "",
            stderr=text("stderr") or "",
            result=text("result"),
            error=text("error"),
            timed_out=flag("timed_out") or reply.get("sandbox") == "unresponsive",
            interrupted=flag("interrupted"),
            oom_killed=flag("oom_killed"),
            restarted=flag("restarted"),
            truncated=flag("truncated"),
        )
        memory = f"ran out of memory (limit {self.limits.memory})"
        stopped = f"Timed out after {timeout:g} s" if result.timed_out else "Interrupted"
        if reply.get("sandbox") == "unresponsive":
            note = f"{stopped} and the sandbox stopped answering; {LOST_FILES}."
        elif reply.get("sandbox") == "died":
            note = f"The sandbox {memory if result.oom_killed else 'stopped'}; {LOST_FILES}."
        elif flag("broken"):
            note = f"The kernel broke the sandbox protocol (a forged reply?); {KEPT_FILES}."
        elif flag("died"):
            note = f"The kernel {memory if result.oom_killed else 'died'}; {KEPT_FILES}."
        elif flag("killed"):
            how = " when interrupted" if result.timed_out else ""
            note = f"{stopped} and did not stop{how}; {KEPT_FILES}."
        elif result.timed_out:
            note = f"{stopped}; the call was interrupted (state kept)."
        elif result.interrupted:
            note = "Interrupted (state kept)."
        elif result.oom_killed:
            note = f"A process of this call {memory} and was killed."
        else:
            return result
        if any(flag(key) for key in ("broken", "died", "killed")) or "sandbox" in reply:
            result.stdout = result.stderr = ""
            result.result = result.error = None
        result.error = f"{result.error or ''}{note}"
        return result

    def _transfer(self, request: dict, blob: bytes, timeout: float | None) -> bytes:
        path = request["path"]
        request["path"] = path[len(DATA_DIR) + 1 :]
        timeout = self.limits.timeout if timeout is None else timeout
        reply, data = self._call(request, blob, timeout)
        if isinstance(reply.get("error"), str):
            raise SandboxError(f"{path}: {reply['error']}")
        failure = self._result(reply, timeout).error
        if failure:
            raise SandboxError(f"{path}: the transfer failed. {failure}")
        return data

    # -- the container ----------------------------------------------------------------------

    def _boot(self) -> None:
        """Attach to the stopped container, start it, and wait for its supervisor's hello."""
        max_json = max(MAX_REQUEST, max_reply(self.limits.max_output))
        channel = Channel(self._client, self._container.id, max_json, self.limits.file_size)
        try:
            self._container.start()
            hello, _ = channel.receive(time.monotonic() + START_TIMEOUT)
        except ChannelError as exc:
            channel.close()
            raise SandboxError(f"the sandbox did not start ({exc})") from None
        if hello != {"id": 0, "ready": True}:
            channel.close()
            raise SandboxError(f"the sandbox started wrongly: {str(hello)[:200]}")
        self._channel = channel

    def _recover(self) -> None:
        """Replace a container that stopped answering or died with a fresh one (so /mnt/data
        is lost); bounded by the client's timeout and START_TIMEOUT. A new container rather
        than a restart, because a sandbox in a bad state (frozen, a dying gVisor) may refuse
        to be killed but is always removed."""
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        self._remove_container()
        if self._closing:
            raise SandboxError("the session was closed during the call")
        self._container = self._client.containers.create(**create_options(self.limits))
        self._boot()

    def _remove_container(self) -> None:
        container, self._container = self._container, None
        if container is not None:
            with contextlib.suppress(*DOCKER_ERRORS):
                container.remove(force=True)

    def _container_oom(self) -> bool:
        """Whether memory killed the container whose channel just closed (under gVisor the
        whole sandbox goes down). Docker's flag can trail the death, or never come: for a
        moment the container can still look running, and containerd may deliver the OOM event
        after the exit event (containerd#12260) or lose it (seen under gVisor in CI, the
        whole OOM_SETTLE waited out). So a stopped container also counts as killed by memory
        when SIGKILL ended it (exit status 137): nothing in it can send its PID 1 that
        signal, and this session was not stopping it; only a kernel's memory killer, or
        someone outside killing it by hand, does."""
        deadline = time.monotonic() + OOM_SETTLE
        try:
            while True:
                self._container.reload()
                state = self._container.attrs["State"]
                if state.get("OOMKilled") or (
                    not state.get("Running") and state.get("ExitCode") == SIGKILLED
                ):
                    return True
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.05)
        except DOCKER_ERRORS:
            return False


def _data_path(name: str) -> str:
    """`name` as a path under /mnt/data; absolute paths are accepted only inside it."""
    path = posixpath.normpath(posixpath.join(DATA_DIR, name))
    if not name or not path.startswith(DATA_DIR + "/"):
        raise ValueError(f"file name {name!r} is not inside {DATA_DIR}")
    return path


def open_session(**limits: Any) -> Session:
    """Start a sandbox session; keyword arguments are the fields of `Limits`."""
    return Session(Limits(**limits)).start()
