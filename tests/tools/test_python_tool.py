"""The python tool: output shaped as the model expects, through the real sandbox."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from ossa.harmony import Message, Role, ToolNamespaceConfig
from ossa.sandbox import Result
from ossa.tools.python_tool import NO_OUTPUT, PythonTool, format_result


def run(tool: PythonTool, code: str) -> str:
    message = Message.from_role_and_content(Role.ASSISTANT, code)
    [reply] = tool.call(message.with_channel("analysis").with_recipient("python"))
    assert reply.author.name == "python"
    assert reply.recipient == "assistant"
    assert reply.channel == "analysis"
    return reply.content[0].text


def test_output_then_error_and_value():
    assert format_result(Result(stdout="a\n", stderr="warn\n", error="Traceback ...\n")) == (
        "a\nwarn\nTraceback ..."
    )
    assert format_result(Result(stdout="a\n", result="42")) == "a\n42"


def test_no_output_gets_the_reference_hint():
    assert format_result(Result()) == NO_OUTPUT
    assert format_result(Result(stdout="\n")) == NO_OUTPUT


def test_restart_and_truncation_are_said_in_words():
    restarted = format_result(Result(result="1", restarted=True))
    assert restarted.startswith("1\n[NOTE] The Python session had stopped and was restarted")
    assert format_result(Result(stdout="x", truncated=True)).endswith("its middle was cut.")


def test_namespace_is_harmonys_stateful_description():
    assert PythonTool().namespace() == ToolNamespaceConfig.python()
    short = PythonTool({"timeout": 30}).namespace().description
    assert "time out after 30 seconds" in short
    assert "/mnt/data" in short


def test_missing_docker_is_a_message(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    tool = PythonTool()
    assert run(tool, "print(1)").startswith("The python tool is unavailable: no Docker daemon")
    tool.close()


def test_empty_code_is_explained_without_starting_a_sandbox():
    assert run(PythonTool(), "  \n") == "No code received: send Python code as the message text."


@pytest.fixture(scope="module")
def python():
    tool = PythonTool({"timeout": 3})
    yield tool
    tool.close()


@pytest.mark.docker
def test_state_output_value_and_error_in_one_session(python):
    assert run(python, "x = 6\nx * 7") == "42"
    assert run(python, "print(x)\nimport sys\nprint('careful', file=sys.stderr)\n1 / 0").startswith(
        "6\ncareful\nTraceback (most recent call last):"
    )
    assert run(python, "y = 1") == NO_OUTPUT


@pytest.mark.docker
def test_files_persist_in_mnt_data(python):
    run(python, "open('/mnt/data/note.txt', 'w').write('kept')")
    assert run(python, "print(open('/mnt/data/note.txt').read())") == "kept"


@pytest.mark.docker
def test_timeout_is_said_in_words(python):
    reply = run(python, "import time\ntime.sleep(60)")
    assert "Timed out after 3 s" in reply
    assert run(python, "'still here'") == "'still here'"


@pytest.mark.docker
def test_dead_kernel_is_reported_then_replaced(python):
    run(python, "z = 1")
    assert "The kernel died" in run(python, "import os\nos._exit(1)")
    assert "NameError" in run(python, "z")


@pytest.mark.docker
def test_interrupt_stops_the_running_cell(python):
    assert python.interrupt() is False  # nothing running
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(run, python, "import time\nprint('started')\ntime.sleep(30)")
        time.sleep(1)
        assert python.interrupt()
        reply = pending.result(timeout=60)
    assert reply.startswith("started\n") and "Interrupted" in reply
    assert run(python, "'still here'") == "'still here'"


@pytest.mark.docker
def test_a_forged_non_object_reply_is_a_message_not_an_exception(python):
    forge = (
        "import os, struct\n"
        "for fd in range(3, 64):\n"
        "    for header in (struct.pack('>I', 6), struct.pack('>II', 6, 0)):\n"
        "        try:\n"
        "            os.write(fd, header + b'[1, 2]')\n"
        "        except OSError:\n"
        "            pass"
    )
    assert isinstance(run(python, forge), str)
    assert run(python, "2 + 2") == "4"
