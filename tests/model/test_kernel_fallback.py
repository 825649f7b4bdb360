"""When the C kernels cannot be built, decoding falls back to torch and says so once, with why.

(The compiler's errors used to be thrown away: a user only saw slow decoding.)
"""

import logging
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ossa.model import kernel

ROOT = Path(__file__).resolve().parents[2]
needs_avx2 = pytest.mark.skipif(
    not kernel._cpu_has_avx2(), reason="without AVX2 that is the reason given"
)

LOAD_TWICE = textwrap.dedent(
    """
    import sys
    import ossa.model
    for _ in range(2):
        engine = ossa.model.load(sys.argv[1])
        print(list(engine.generate([1, 2, 3], max_tokens=2)))
    """
)


def load_twice(checkpoint: Path, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    base = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "XDG_CACHE_HOME": str(tmp_path)}
    return subprocess.run(
        [sys.executable, "-c", LOAD_TWICE, str(checkpoint)],
        env=base | env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@needs_avx2
@pytest.mark.parametrize(
    ("env", "reason"),
    [
        ({"CC": "/bin/false"}, "compiling them failed (/bin/false: exit status 1)"),
        ({"CC": "/no/such/cc"}, "no C compiler was found (/no/such/cc; install gcc)"),
        ({"OSSA_NO_KERNEL": "1"}, "OSSA_NO_KERNEL=1 turns them off"),
    ],
)
def test_fallback_is_said_once_with_why(tiny_original, tmp_path, env, reason):
    done = load_twice(tiny_original, tmp_path, **env)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 2  # both engines decoded, with torch
    warnings = [line for line in done.stderr.splitlines() if "decoding with torch" in line]
    assert len(warnings) == 1 and reason in warnings[0], done.stderr
    assert "Traceback" not in done.stderr


@needs_avx2
@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")
def test_compiler_errors_are_logged_and_summed_up(tmp_path, monkeypatch, caplog):
    broken = tmp_path / "csrc"
    shutil.copytree(Path(kernel.__file__).parent / "csrc", broken)
    moe = broken / "moe.c"
    moe.write_text(moe.read_text().replace("float *xs = ", "float *xs = undeclared_name + "))
    monkeypatch.setattr(kernel, "SOURCE_DIR", broken)
    monkeypatch.setattr(kernel, "_build", None)
    monkeypatch.setattr(kernel, "_warned", False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("OSSA_NO_KERNEL", raising=False)
    monkeypatch.delenv("CC", raising=False)
    with caplog.at_level(logging.DEBUG, logger="ossa.model.kernel"):
        assert not kernel.enabled() and not kernel.enabled()
    logged = [r for r in caplog.records if r.name == "ossa.model.kernel"]
    said = [r.getMessage() for r in logged if r.levelno == logging.DEBUG]
    assert any("moe.c" in m and "undeclared_name" in m for m in said)  # the full output
    warned = [r.getMessage() for r in logged if r.levelno == logging.WARNING]
    assert len(warned) == 1 and "compiling them failed" in warned[0]
    assert "undeclared_name" in warned[0]  # its first lines
    assert "undeclared_name" in kernel.unavailable_reason()
    with pytest.raises(RuntimeError, match="not available"):
        kernel._library()


def test_sources_are_package_files_hashed_into_the_library_name():
    files = kernel.sources()
    assert {"moe.c", "gemv.c", "simd.h"} <= set(files)
    assert "void moe(" in files["moe.c"] and "void bf16_gemv(" in files["gemv.c"]
    path = kernel.library_path(files, ["cc"])
    edited = files | {"simd.h": files["simd.h"] + "\n"}
    assert kernel.library_path(edited, ["cc"]) != path != kernel.library_path(files, ["clang"])
    assert path == kernel.library_path(dict(files), ["cc"])
