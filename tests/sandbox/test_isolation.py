"""What code in the sandbox must not reach: network, the image, privileges, the host, other sessions."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import docker
import pytest

from ossa.sandbox import open_session

pytestmark = pytest.mark.docker


def blocked(session, code: str) -> str:
    """Run `code`, which must raise; return the exception line."""
    result = session.run(code)
    assert result.error is not None, f"not blocked: {code!r} gave {result}"
    return result.error.strip().splitlines()[-1]


def test_dns_fails(session) -> None:
    assert "gaierror" in blocked(session, "import socket; socket.getaddrinfo('example.com', 80)")


@pytest.mark.parametrize("address", [("1.1.1.1", 53), ("8.8.8.8", 443), ("172.17.0.1", 2375)])
def test_tcp_connects_fail(session, address) -> None:
    code = f"import socket; socket.create_connection({address!r}, timeout=3)"
    assert "Error" in blocked(session, code)


@pytest.mark.parametrize(
    "path", ["/x", "/usr/x", "/etc/passwd", "/usr/lib/python3/dist-packages/x.py"]
)
def test_writes_outside_tmp_and_data_fail(session, path) -> None:
    assert "Error" in blocked(session, f"open({path!r}, 'w').write('x')")


def test_tmp_is_noexec(session) -> None:
    code = (
        "import os, shutil, subprocess\n"
        "shutil.copy('/bin/true', '/tmp/t'); os.chmod('/tmp/t', 0o755)\n"
        "subprocess.run(['/tmp/t'], check=True)"
    )
    assert "PermissionError" in blocked(session, code)


def test_no_capabilities_no_new_privileges_not_root(session) -> None:
    status = session.run("print(open('/proc/self/status').read())").stdout
    assert "CapEff:\t0000000000000000" in status
    assert "CapPrm:\t0000000000000000" in status
    uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
    assert uid_line.split()[1:] == ["65534"] * 4
    # gVisor's /proc omits the NoNewPrivs line, so ask the kernel directly as well.
    prctl = "import ctypes; ctypes.CDLL(None, use_errno=True).prctl(39, 0, 0, 0, 0)"
    assert session.run(prctl).result == "1"
    if "NoNewPrivs" in status:
        assert "NoNewPrivs:\t1" in status


def test_no_docker_socket(session) -> None:
    code = (
        "import os; [p for p in ('/var/run/docker.sock', '/run/docker.sock') if os.path.exists(p)]"
    )
    assert session.run(code).result == "[]"


def test_host_environment_is_invisible(runtime, monkeypatch) -> None:
    monkeypatch.setenv("OSSA_SANDBOX_CANARY", "canary-7f3a")
    with open_session(runtime=runtime) as fresh:
        code = (
            "import os\n"
            "seen = [p for p in os.listdir('/proc') if p.isdigit() and os.access(f'/proc/{p}/environ', os.R_OK)]\n"
            "texts = [open(f'/proc/{p}/environ', 'rb').read() for p in seen]\n"
            "any(b'canary-7f3a' in t for t in texts) or 'canary-7f3a' in str(os.environ)"
        )
        assert fresh.run(code).result == "False"


def test_two_sessions_see_neither_files_nor_processes_of_each_other(runtime) -> None:
    with ThreadPoolExecutor(2) as pool:  # opened concurrently, as batch runs do
        first, second = pool.map(lambda _: open_session(runtime=runtime), range(2))
    with first, second, ThreadPoolExecutor(1) as pool:
        seen = (
            "(os.path.exists('/mnt/data/secret'), os.path.exists('/tmp/secret'),"
            " any(c == b'sleep\\x001234\\x00' for c in cmds))"
        )
        look = (
            "import os\n"
            "cmds = [open(f'/proc/{p}/cmdline', 'rb').read() for p in os.listdir('/proc') if p.isdigit()]\n"
            f"{seen}"
        )
        # A cell's processes live as long as its call, so the first session's sleeper is
        # looked for while that call is still running.
        printed = threading.Event()  # the first cell's look has been printed
        busy = pool.submit(
            first.run,
            "import subprocess, time\n"
            "open('/mnt/data/secret', 'w').write('1'); open('/tmp/secret', 'w').write('1')\n"
            "sleeper = subprocess.Popen(['sleep', '1234'])\n"
            "while not open(f'/proc/{sleeper.pid}/cmdline', 'rb').read().startswith(b'sleep'):\n"
            "    time.sleep(0.05)  # until it has exec'd\n"
            f"{look}\n"
            f"print({seen})\ntime.sleep(60)",
            on_output=lambda text: printed.set() if "True" in text else None,
        )
        container = docker.from_env().containers.get(first.container_id)
        for _ in range(300):
            if any("sleep 1234" in " ".join(row) for row in container.top()["Processes"]):
                break
            time.sleep(0.1)
        assert second.run(look).result == "(False, False, False)"
        assert printed.wait(60)  # interrupting earlier would stop the cell before its print
        assert first.interrupt()
        assert busy.result(timeout=60).stdout == "(True, True, True)\n"
        assert first.container_id != second.container_id
