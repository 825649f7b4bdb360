"""A session behaves like a notebook: state, output, errors, files (against the real daemon)."""

from __future__ import annotations

import time

import pytest

from ossa.sandbox import Result, open_session

pytestmark = pytest.mark.docker


def test_state_persists_between_calls(session) -> None:
    session.run("counter = 41")
    assert session.run("counter += 1\ncounter").result == "42"


def test_multiline_output_and_last_expression(session) -> None:
    result = session.run("for i in range(3):\n    print('line', i)\n'done'")
    assert result == Result(
        stdout="line 0\nline 1\nline 2\n", result="'done'", duration_s=result.duration_s
    )


def test_stderr_and_subprocess_output_are_captured(session) -> None:
    result = session.run(
        "import os, sys\nprint('to err', file=sys.stderr)\nos.system('echo from-sh')"
    )
    assert result.stderr == "to err\n"
    assert result.stdout == "from-sh\n"
    assert result.result == "0"


def test_exception_gives_a_traceback_and_keeps_the_session(session) -> None:
    result = session.run("def boom():\n    raise ValueError('bad input')\nboom()")
    assert result.result is None
    assert "line 2, in boom" in result.error
    assert result.error.rstrip().endswith("ValueError: bad input")
    assert session.run("2 + 2").result == "4"


def test_unicode_and_invalid_utf8_output(session) -> None:
    assert session.run("print('héllo ✓ 日本')").stdout == "héllo ✓ 日本\n"
    raw = session.run(
        "import sys\nsys.stdout.flush()\nsys.stdout.buffer.write(b'ok \\xff\\xfe\\n')"
    )
    assert raw.stdout == "ok \ufffd\ufffd\n"


def test_scientific_stack_is_installed(session) -> None:
    code = (
        "import numpy, scipy, sympy, pandas, matplotlib.pyplot as plt\nint(numpy.arange(5).sum())"
    )
    assert session.run(code).result == "10"


def test_put_and_get_files_in_mnt_data(session) -> None:
    session.put_file("in/table.csv", b"a,b\n1,2\n")
    assert session.run("open('/mnt/data/in/table.csv').read()").result == "'a,b\\n1,2\\n'"
    session.run("open('out.bin', 'wb').write(bytes(range(256)))")
    assert session.get_file("out.bin") == bytes(range(256))
    assert session.get_file("/mnt/data/out.bin") == bytes(range(256))


def test_file_names_outside_mnt_data_are_refused(session) -> None:
    for name in ("../etc/passwd", "/etc/passwd", ""):
        with pytest.raises(ValueError, match="not inside /mnt/data"):
            session.get_file(name)
    with pytest.raises(Exception, match="No such file"):
        session.get_file("missing.txt")


def test_mnt_data_persists_in_a_session_and_is_empty_in_a_new_one(session, runtime) -> None:
    session.run("open('/mnt/data/kept.txt', 'w').write('x')")
    assert session.run("import os; 'kept.txt' in os.listdir('/mnt/data')").result == "True"
    with open_session(runtime=runtime) as fresh:
        assert fresh.run("import os; os.listdir('/mnt/data')").result == "[]"


def test_a_dead_kernel_is_restarted_on_the_next_call(session) -> None:
    session.run(
        "import os, threading, time\nlost = 1\n"
        "threading.Thread(target=lambda: (time.sleep(0.1), os._exit(1))).start()"
    )
    time.sleep(1.5)  # let the kernel die between calls
    after = session.run("'lost' in globals()")
    assert after.restarted
    assert after.result == "False"
