"""MCP namespaces against a real server written with the MCP SDK (stdio and streamable HTTP)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ossa.harmony import DeveloperContent, Message, Role, load_harmony_encoding
from ossa.tools import build_toolbox
from ossa.tools.mcp import MCPServerTool, mcp_tools

SERVER = str(Path(__file__).with_name("mcp_server.py"))
STDIO = {"command": sys.executable, "args": [SERVER], "env": {"OSSA_TEST_VALUE": "from-config"}}


def ask(tool, recipient: str, arguments: str) -> Message:
    message = Message.from_role_and_content(Role.ASSISTANT, arguments).with_channel("commentary")
    [reply] = tool.call(message.with_recipient(recipient))
    return reply


def text(message: Message) -> str:
    return message.content[0].text


@pytest.fixture(scope="module")
def calc():
    [tool] = mcp_tools({"mcpServers": {"calc": STDIO}})
    yield tool
    tool.close()


def test_namespace_renders_the_servers_tools(calc):
    enc = load_harmony_encoding()
    content = DeveloperContent.new().with_tools(calc.namespace())
    rendered = enc.decode(enc.render(Message.from_role_and_content(Role.DEVELOPER, content)))
    assert rendered.startswith(
        "<|start|>developer<|message|># Tools\n\n## calc\n\n// Arithmetic for tests.\n"
        "namespace calc {\n\n// Add two integers.\ntype add = (_: {\na: number,\nb: number,\n"
        "}) => any;\n\n// The server's process id.\ntype pid = () => any;\n\n"
    )


def test_call_returns_the_tool_text(calc):
    reply = ask(calc, "calc.add", '{"a": 2, "b": 3}')
    assert text(reply) == "5"
    assert reply.author.name == "calc.add"
    assert reply.recipient == "assistant"
    assert reply.channel == "commentary"


def test_configured_environment_reaches_the_server(calc):
    assert text(ask(calc, "calc.getenv", '{"name": "OSSA_TEST_VALUE"}')) == "from-config"


def test_errors_inside_the_server_come_back_as_text(calc):
    assert "Error executing tool fail" in text(ask(calc, "calc.fail", '{"reason": "boom"}'))
    assert "validation error" in text(ask(calc, "calc.add", '{"a": "x"}'))
    assert text(ask(calc, "calc.add", "[1]")).startswith("Arguments must be a JSON object")


def test_unknown_tool_lists_the_servers_tools(calc):
    assert text(ask(calc, "calc.mul", "{}")) == (
        "Unknown tool 'mul' on calc. Tools: add, pid, getenv, crash, fail."
    )


def test_crashed_server_is_reported_and_restarted():
    tool = MCPServerTool("calc", STDIO)
    try:
        first_pid = text(ask(tool, "calc.pid", ""))
        crashed = text(ask(tool, "calc.crash", ""))
        assert crashed.startswith("MCP server 'calc' failed during the call (MCPError")
        assert crashed.endswith("it will be restarted on the next call.")
        second_pid = text(ask(tool, "calc.pid", ""))
        assert second_pid.isdigit() and second_pid != first_pid
        assert text(ask(tool, "calc.add", '{"a": 1, "b": 1}')) == "2"
    finally:
        tool.close()


def test_server_that_cannot_start_is_a_message_not_a_crash():
    tool = MCPServerTool("gone", {"command": sys.executable, "args": ["-c", "raise SystemExit(3)"]})
    assert tool.namespace().description.startswith("Unavailable: MCPError: Connection closed")
    assert text(ask(tool, "gone.x", "{}")).startswith("MCP server 'gone' is not running: MCPError")
    missing = MCPServerTool("missing", {"command": "/nonexistent/server"})
    assert "No such file or directory" in text(ask(missing, "missing.x", "{}"))


@pytest.mark.parametrize(
    ("name", "config", "error"),
    [
        ("python", STDIO, "reserved"),
        ("my.server", STDIO, "use letters, digits"),
        ("empty", {"args": []}, "needs a 'command'"),
    ],
)
def test_bad_configuration_is_refused(name, config, error):
    with pytest.raises(ValueError, match=error):
        MCPServerTool(name, config)


def test_toolbox_routes_to_mcp_namespaces():
    with build_toolbox([], mcp_servers={"calc": STDIO}, plugins=False) as box:
        assert set(box.developer_content(DeveloperContent.new()).tools) == {"calc"}
        assert text(ask(box, "calc.add", '{"a": 20, "b": 22}')) == "42"


@pytest.fixture
def http_server():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, SERVER, str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        for _ in range(300):  # the server imports the SDK first: wait until it listens
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(10)


def test_streamable_http_server(http_server):
    [tool] = mcp_tools({"web": {"url": http_server}})
    try:
        assert [t.name for t in tool.namespace().tools][:2] == ["add", "pid"]
        assert text(ask(tool, "web.add", '{"a": 4, "b": 5}')) == "9"
    finally:
        tool.close()
