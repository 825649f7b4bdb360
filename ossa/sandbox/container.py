"""The hardened container a session runs in: its limits, and the Docker options they become.

Every protection is on unless the caller turns it off with an option whose name says so
(``dangerously_*``); the numeric limits can be tuned but never switched off.
"""

from __future__ import annotations

import math
import os
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path

import docker
from docker.models.containers import Container
from docker.types import LogConfig, Ulimit

from ossa.sandbox.image import DEFAULT_IMAGE

LABEL = "ossa.sandbox"  # every container we make carries it, for status and prune
OWNER_LABEL = "ossa.sandbox.owner"  # boot:pid-namespace:pid:start-time of its process
DATA_DIR = "/mnt/data"
# PID 1, the supervisor, keeps only what it needs to start cells as nobody and to stop them;
# the cells themselves run with no capabilities at all (see kernel.py).
SUPERVISOR_CAPABILITIES = ["SETUID", "SETGID", "SETPCAP", "KILL"]
KERNEL_SOURCE = (Path(__file__).parent / "kernel.py").read_text()

# The container's whole environment: nothing from the host is passed in.
ENVIRONMENT = {
    "HOME": "/tmp",
    "LANG": "C.UTF-8",
    "PYTHONIOENCODING": "utf-8",
    "PYTHONDONTWRITEBYTECODE": "1",
    "MPLBACKEND": "Agg",
    "MPLCONFIGDIR": "/tmp/matplotlib",
    "PATH": "/usr/local/bin:/usr/bin:/bin",
}


@dataclass(frozen=True)
class Limits:
    """What one session may use. Sizes take Docker's notation ("512m", "1g")."""

    memory: str = "512m"  # swap included: the container gets no swap on top
    cpus: float = 1.0
    pids: int = 128
    timeout: float = 120.0  # seconds per call, the contract gpt-oss was trained with
    max_output: int = 20_000  # bytes kept per stream (head and tail halves)
    open_files: int = 256
    file_size: int = 64 << 20  # bytes, the largest file code may write
    data_size: str = "256m"  # the /mnt/data tmpfs
    tmp_size: str = "64m"
    image: str = DEFAULT_IMAGE
    runtime: str | None = None  # "runsc" for gVisor
    dangerously_enable_network: bool = False

    def __post_init__(self) -> None:
        if self.cpus <= 0 or self.pids < 16 or self.timeout <= 0 or self.max_output < 2:
            raise ValueError(f"sandbox limits out of range: {self}")


def thread_caps(cpus: float) -> dict[str, str]:
    """Size the numeric libraries' thread pools to the CPU share, not the host's core count,
    which on a big machine would spawn more threads than the pids limit allows."""
    threads = str(max(1, math.ceil(cpus)))
    names = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")
    return dict.fromkeys(names, threads)


def owner_id() -> str:
    """Identify this process so a later one can tell whether it is still alive: the boot and
    the PID namespace it runs in, its pid there, and its start time."""
    pid = os.getpid()
    return f"{_boot_id()}:{_pid_namespace()}:{pid}:{_start_time(pid)}"


def owner_alive(owner: str) -> bool:
    """False only when `owner` ran in this boot and this PID namespace and that process is gone.

    A pid means nothing across PID namespaces (an ossa in a container, or under `unshare`),
    so any other owner (another machine, namespace or label format) is not ours to judge.
    """
    parts = owner.split(":")
    if len(parts) != 4 or parts[:2] != [_boot_id(), _pid_namespace()] or not parts[2].isdigit():
        return True
    return _start_time(int(parts[2])) == parts[3]


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:  # no /proc (macOS): the host name must do
        return socket.gethostname()


def _pid_namespace() -> str:
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return ""


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot ("" if it does not exist)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return ""
    except OSError:  # no /proc (macOS): fall back to whether the pid exists
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return ""
        except PermissionError:
            pass
        return "?"
    return stat.rsplit(")", 1)[1].split()[19]


def create_options(limits: Limits) -> dict:
    """Keyword arguments for `docker.containers.create` that build the hardened sandbox."""
    tmpfs_flags = "rw,noexec,nosuid,nodev"
    return {
        "image": limits.image,
        "command": [
            *("python3", "-I", "-c", KERNEL_SOURCE, "supervisor"),
            *(str(limits.max_output), str(limits.file_size)),
        ],
        "name": f"ossa-sandbox-{uuid.uuid4().hex[:12]}",
        "labels": {LABEL: "1", OWNER_LABEL: owner_id()},
        "user": "0:0",
        "stdin_open": True,  # the host's channel to the supervisor
        "environment": {**ENVIRONMENT, **thread_caps(limits.cpus)},
        "working_dir": "/",  # /mnt/data is nobody's alone; the worker changes into it
        "hostname": "sandbox",
        "network_mode": "bridge" if limits.dangerously_enable_network else "none",
        "read_only": True,
        "tmpfs": {
            "/tmp": f"{tmpfs_flags},size={limits.tmp_size},mode=1777",
            DATA_DIR: f"{tmpfs_flags},size={limits.data_size},uid=65534,gid=65534,mode=0700",
        },
        "shm_size": "16m",
        "cap_drop": ["ALL"],
        "cap_add": SUPERVISOR_CAPABILITIES,
        "security_opt": ["no-new-privileges:true"],
        "mem_limit": limits.memory,
        "memswap_limit": limits.memory,
        "nano_cpus": int(limits.cpus * 1e9),
        "pids_limit": limits.pids,
        "ulimits": [
            Ulimit(name="nofile", soft=limits.open_files, hard=limits.open_files),
            Ulimit(name="fsize", soft=limits.file_size, hard=limits.file_size),
            Ulimit(name="core", soft=0, hard=0),
            *_gvisor_task_cap(limits),
        ],
        "log_config": LogConfig(type="none"),
        "runtime": limits.runtime,
        "detach": True,
    }


def _gvisor_task_cap(limits: Limits) -> list[Ulimit]:
    """gVisor runs every task of a sandbox on a few host threads, so the pids cgroup limit
    never applies inside it; its own RLIMIT_NPROC, counted per user inside the sandbox, does.
    (Under runc that limit would count the user's processes of the whole host instead.)"""
    if limits.runtime != "runsc":
        return []
    return [Ulimit(name="nproc", soft=limits.pids, hard=limits.pids)]


def sandbox_containers(client: docker.DockerClient) -> list[Container]:
    """Every container any ossa process made on this daemon, running or not."""
    return client.containers.list(all=True, filters={"label": LABEL})


def remove_orphans(client: docker.DockerClient, everything: bool = False) -> int:
    """Remove containers whose process is gone (all of them with `everything`); return how many."""
    removed = 0
    for container in sandbox_containers(client):
        if everything or not owner_alive(container.labels.get(OWNER_LABEL, "")):
            try:
                container.remove(force=True)
                removed += 1
            except docker.errors.NotFound:
                pass  # another process removed it first
    return removed
