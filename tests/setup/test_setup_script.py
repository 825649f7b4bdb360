"""scripts/setup.sh where a new user meets it.

The python part runs in a Debian 12 chroot made by debootstrap: Debian's own python3, externally
managed (PEP 668), without venv's pip bootstrap, and nothing installed by hand. The torch choice
is checked here with a fake nvidia-smi and a package index served on 127.0.0.1.
"""

from __future__ import annotations

import http.server
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SETUP = REPO / "scripts" / "setup.sh"
MIRROR = "http://deb.debian.org/debian"
# The base root is made once and copied for each run, so every run meets a machine that
# set-up has never touched. OSSA_TEST_CACHE moves it.
CACHE = Path(os.environ.get("OSSA_TEST_CACHE", Path(tempfile.gettempdir()) / "ossa-test-cache"))
CHROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PROJECT = "/root/ossa"  # where the project is copied inside the chroot

pytestmark = pytest.mark.setup


def _host_has_nvidia_gpu() -> bool:
    return shutil.which("nvidia-smi") is not None or Path("/proc/driver/nvidia/version").exists()


def _print_torch(**env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OSSA_TORCH")}
    return subprocess.run(
        ["bash", str(SETUP), "--print-torch"],
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def test_ci_runs_the_readmes_two_commands() -> None:
    blocks = re.findall(r"```bash\n(.*?)```", (REPO / "README.md").read_text(), re.S)
    ci = (REPO / ".ci" / "run").read_text().strip().splitlines()
    assert blocks[0].strip() == "bash scripts/setup.sh && ossa chat"
    assert "bash scripts/setup.sh" in ci
    assert ci[-1] == blocks[1].strip() == ".venv/bin/python -m pytest"


# -- which torch build ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cpu_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A package index on 127.0.0.1 with a page for torch, as PyTorch's CPU index has."""
    root = tmp_path_factory.mktemp("index")
    (root / "cpu" / "torch").mkdir(parents=True)
    (root / "cpu" / "torch" / "index.html").write_text("<html></html>")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_a_gpu_gets_the_default_cuda_build(tmp_path: Path) -> None:
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho 'GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-0)'\n")
    fake.chmod(0o755)
    done = _print_torch(PATH=f"{tmp_path}:{os.environ['PATH']}")
    assert done.stdout.strip() == "torch==2.13.0"
    assert "NVIDIA GPU found" in done.stderr


def test_torch_index_variable_wins_without_probing() -> None:
    done = _print_torch(OSSA_TORCH_INDEX="http://127.0.0.1:9/whl/cu126")
    assert done.stdout.split() == [
        "torch==2.13.0",
        "--extra-index-url",
        "http://127.0.0.1:9/whl/cu126",
    ]


@pytest.mark.skipif(_host_has_nvidia_gpu(), reason="this machine has an NVIDIA GPU")
def test_no_gpu_gets_the_cpu_index_when_it_answers(cpu_index: str) -> None:
    done = _print_torch(OSSA_TORCH_CPU_INDEX=f"{cpu_index}/cpu")
    assert done.stdout.split() == ["torch==2.13.0", "--extra-index-url", f"{cpu_index}/cpu"]


@pytest.mark.skipif(_host_has_nvidia_gpu(), reason="this machine has an NVIDIA GPU")
def test_no_gpu_falls_back_to_pips_indexes_when_the_cpu_index_does_not_answer(
    cpu_index: str,
) -> None:
    done = _print_torch(OSSA_TORCH_CPU_INDEX=f"{cpu_index}/missing")
    assert done.stdout.strip() == "torch==2.13.0"
    assert "does not answer" in done.stderr


# -- the python part on a stock Debian 12 -----------------------------------------------------


def _need_root_tools() -> None:
    if os.geteuid() != 0:
        pytest.skip("the Debian chroot needs root")
    for tool in ("debootstrap", "unshare", "chroot"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")


def _base_root() -> Path:
    """Debian 12 minbase with Debian's python3, made once and kept in CACHE."""
    base = CACHE / "bookworm-python3"
    if not base.exists():
        partial = base.with_name(base.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.parent.mkdir(parents=True, exist_ok=True)
        command = ["debootstrap", "--variant=minbase", "--include=python3", "bookworm"]
        subprocess.run(
            [*command, str(partial), MIRROR], check=True, capture_output=True, timeout=1200
        )
        partial.rename(base)
    return base


def _mounts_under(root: Path) -> list[str]:
    text = Path("/proc/self/mountinfo").read_text()
    return [line for line in text.splitlines() if f" {root}/" in line or f" {root} " in line]


def _host_pip_config(root: Path) -> None:
    """The host's pip configuration, so that pip in the chroot finds what pip here finds.

    That includes the CA bundle and the local CAs (a network with an intercepting proxy adds
    one): python3-venv pulls in ca-certificates, which rebuilds the bundle from Debian's CAs
    and the local ones.
    """
    cert = os.environ.get("PIP_CERT", "/etc/ssl/certs/ca-certificates.crt").lstrip("/")
    local_cas = "usr/local/share/ca-certificates"
    for name in ("etc/pip.conf", "etc/xdg/pip", "root/.config/pip", "root/.pip", cert, local_cas):
        source = Path("/") / name
        if source.is_dir():
            shutil.copytree(source, root / name, dirs_exist_ok=True)
        elif source.is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, root / name)
    shutil.copy2("/etc/resolv.conf", root / "etc" / "resolv.conf")


def _in_chroot(root: Path, command: str, timeout: int = 120) -> subprocess.CompletedProcess[str]:
    """Run a shell command in the chroot with /proc, /dev and the host's /opt (read-only).

    The mounts live in a private mount namespace that ends with the command, so none is left
    behind for the clean-up to walk into.
    """
    r = shlex.quote(str(root))
    mounts = f"mount -t proc proc {r}/proc && mount --rbind /dev {r}/dev"
    if Path("/opt").is_dir():  # find-links and file:// indexes in the pip config live there
        mounts += f" && mount --bind /opt {r}/opt && mount -o remount,bind,ro {r}/opt"
    script = f'{mounts} && exec chroot {r} /bin/bash -c "$1"'
    keep = (
        "PIP_",
        "http_proxy",
        "https_proxy",
        "no_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
    )
    env = {k: v for k, v in os.environ.items() if k.startswith(keep)}
    env.update(PATH=CHROOT_PATH, HOME="/root", LANG="C.UTF-8")
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", command],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


SYSTEM_PYTHON_FILES = "find /usr/lib/python3/dist-packages /usr/local/lib | sort"


@pytest.fixture(scope="module")
def debian(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A fresh copy of the Debian root after `setup.sh --python-only`, and its system files."""
    _need_root_tools()
    root = tmp_path_factory.mktemp("debian") / "root"
    subprocess.run(["cp", "-a", str(_base_root()), str(root)], check=True)
    try:
        _host_pip_config(root)
        (root / "opt").mkdir(exist_ok=True)
        ignore = shutil.ignore_patterns(
            ".git", ".venv", "__pycache__", "*.egg-info", ".*_cache", ".hypothesis", "build"
        )
        shutil.copytree(REPO, root / PROJECT.lstrip("/"), ignore=ignore)
        before = _in_chroot(root, SYSTEM_PYTHON_FILES).stdout
        done = _in_chroot(root, f"bash {PROJECT}/scripts/setup.sh --python-only", timeout=1800)
        assert done.returncode == 0, done.stderr[-3000:]
        yield root, before
    finally:
        assert not _mounts_under(root), "a mount is left in the chroot; not removing it"
        shutil.rmtree(root)


@pytest.mark.slow
def test_debian_python_is_externally_managed_and_lacks_venv(tmp_path: Path) -> None:
    # What the test stands on: Debian's python3 refuses pip and cannot make a venv by itself.
    _need_root_tools()
    base = _base_root()
    assert list(base.glob("usr/lib/python3.*/EXTERNALLY-MANAGED"))
    assert not list(base.glob("usr/lib/python3.*/ensurepip"))


@pytest.mark.slow
def test_ossa_runs_from_path(debian: tuple[Path, str]) -> None:
    root, _ = debian
    done = _in_chroot(root, "command -v ossa && ossa --help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "/usr/local/bin/ossa"
    assert "chat" in done.stdout


@pytest.mark.slow
def test_the_system_python_is_left_alone(debian: tuple[Path, str]) -> None:
    root, before = debian
    assert _in_chroot(root, SYSTEM_PYTHON_FILES).stdout == before
    imported = _in_chroot(root, "/usr/bin/python3 -c 'import ossa'")
    assert "No module named 'ossa'" in imported.stderr
    config = (root / PROJECT.lstrip("/") / ".venv" / "pyvenv.cfg").read_text()
    assert "home = /usr/bin" in config  # the venv is made from Debian's python3


@pytest.mark.slow
@pytest.mark.skipif(_host_has_nvidia_gpu(), reason="this machine has an NVIDIA GPU")
def test_torch_is_the_cpu_build(debian: tuple[Path, str]) -> None:
    root, _ = debian
    done = _in_chroot(
        root, f"{PROJECT}/.venv/bin/python -c 'import torch; print(torch.version.cuda)'"
    )
    assert done.stdout.strip() == "None", done.stderr


@pytest.mark.slow
def test_running_it_again_keeps_the_environment(debian: tuple[Path, str]) -> None:
    root, _ = debian
    marker = root / PROJECT.lstrip("/") / ".venv" / "kept"
    marker.touch()
    done = _in_chroot(root, f"bash {PROJECT}/scripts/setup.sh --python-only", timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert marker.exists()
    assert "creating" not in done.stderr
    assert _in_chroot(root, "ossa --help").returncode == 0
