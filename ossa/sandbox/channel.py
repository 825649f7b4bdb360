"""The host's end of the supervisor's stdin and stdout, attached through the Docker API.

Every send and receive runs under the caller's deadline, and every frame is checked against the
limits before it is buffered, so neither a stuck container nor a flood of output can hold the
host past a call's deadline or fill its memory.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import time
from typing import Any

import docker

from ossa.sandbox.errors import SandboxError
from ossa.sandbox.kernel import Frames, ProtocolError, pack

DOCKER_HEADER = struct.Struct(">BxxxI")  # Docker's multiplexed stream: stream number, size
STDOUT = 1
RECEIVE_SIZE = 1 << 16


class ChannelError(SandboxError):
    """The channel cannot be used any more: closed, past its deadline or out of protocol."""


class ChannelTimeout(ChannelError):
    """The deadline passed while sending or waiting for a frame."""


class Channel:
    """Framed messages to and from the container's PID 1."""

    def __init__(
        self, client: docker.DockerClient, container_id: str, max_json: int, max_blob: int
    ) -> None:
        params = {"stdin": 1, "stdout": 1, "stream": 1}
        self._response: Any = client.api.attach_socket(container_id, params=params)
        self._socket: socket.socket = getattr(self._response, "_sock", self._response)
        self._frames = Frames(max_json, max_blob)
        self._docker_buffer = bytearray()  # an incomplete Docker stream header
        self._chunk_left = 0  # bytes still to come of the current Docker chunk
        self._chunk_stream = STDOUT

    def send(self, message: dict, blob: bytes, deadline: float) -> None:
        """Send one frame; a deadline passed midway leaves the channel unusable."""
        try:
            self._socket.settimeout(_remaining(deadline))
            self._socket.sendall(pack(message, len(blob)))
            if blob:
                self._socket.settimeout(_remaining(deadline))
                self._socket.sendall(blob)
        except TimeoutError:
            raise ChannelTimeout("the sandbox did not take the request in time") from None
        except OSError as exc:
            raise ChannelError(f"the sandbox channel closed ({exc})") from None

    def receive(self, deadline: float) -> tuple[dict, bytes]:
        """The next frame; ChannelTimeout once `deadline` (time.monotonic) passes."""
        while True:
            try:
                frame = self._frames.take()
            except ProtocolError as exc:
                raise ChannelError(f"the sandbox broke the protocol: {exc}") from None
            if frame is not None:
                return frame
            try:
                self._socket.settimeout(_remaining(deadline))
                data = self._socket.recv(RECEIVE_SIZE)
            except TimeoutError:
                raise ChannelTimeout("the sandbox did not answer in time") from None
            except OSError as exc:
                raise ChannelError(f"the sandbox channel closed ({exc})") from None
            if not data:
                raise ChannelError("the sandbox channel closed")
            self._demultiplex(data)

    def _demultiplex(self, data: bytes) -> None:
        """Feed the stdout payload of Docker's stream framing to the frame parser."""
        view = memoryview(data)
        while view:
            if self._chunk_left == 0:
                need = DOCKER_HEADER.size - len(self._docker_buffer)
                self._docker_buffer += view[:need]
                view = view[need:]
                if len(self._docker_buffer) < DOCKER_HEADER.size:
                    return
                self._chunk_stream, self._chunk_left = DOCKER_HEADER.unpack(self._docker_buffer)
                self._docker_buffer.clear()
                continue
            payload = view[: self._chunk_left]
            view = view[len(payload) :]
            self._chunk_left -= len(payload)
            if self._chunk_stream == STDOUT:
                self._frames.feed(payload)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self._response.close()


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    return left
