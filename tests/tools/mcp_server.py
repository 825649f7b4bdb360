"""A small MCP server for the tests (the MCP SDK's MCPServer, once called FastMCP).

`python mcp_server.py` serves stdio; `python mcp_server.py PORT` serves streamable HTTP on
127.0.0.1:PORT/mcp.

`crash` kills the process mid-call, so the client sees a server die and must restart it;
`pid` tells the tests which process answered.
"""

import os
import sys

from mcp.server.mcpserver import MCPServer

server = MCPServer("calc", instructions="Arithmetic for tests.")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def pid() -> str:
    """The server's process id."""
    return str(os.getpid())


@server.tool()
def getenv(name: str) -> str:
    """An environment variable of the server process."""
    return os.environ.get(name, "(unset)")


@server.tool()
def crash() -> str:
    """Exit the server process abruptly."""
    os._exit(3)


@server.tool()
def fail(reason: str) -> str:
    """Raise an error inside the tool."""
    raise RuntimeError(reason)


if __name__ == "__main__":
    if len(sys.argv) > 1:
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[1]))
    else:
        server.run()
