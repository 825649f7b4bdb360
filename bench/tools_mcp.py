"""What ossa's synchronous MCP bridge costs per call, against the MCP SDK used directly.

Both sides call the same stdio server (tests/tools/mcp_server.py) ``add`` tool N times; ossa
goes through ``MCPServerTool.call`` (message in, tool message out, via the background loop),
the peer awaits ``mcp.Client.call_tool`` in its own event loop. Run:
``python bench/tools_mcp.py [N]``.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

from mcp import Client, StdioServerParameters

from ossa.harmony import Message, Role
from ossa.tools.mcp import MCPServerTool

SERVER = str(Path(__file__).resolve().parent.parent / "tests" / "tools" / "mcp_server.py")
CONFIG = {"command": sys.executable, "args": [SERVER]}


def ossa_calls(n: int) -> list[float]:
    tool = MCPServerTool("calc", CONFIG)
    message = Message.from_role_and_content(Role.ASSISTANT, '{"a": 1, "b": 2}')
    message = message.with_channel("commentary").with_recipient("calc.add")
    try:
        tool.call(message)  # start the server outside the timing
        times = []
        for _ in range(n):
            start = time.perf_counter()
            [reply] = tool.call(message)
            times.append(time.perf_counter() - start)
            assert reply.content[0].text == "3"
        return times
    finally:
        tool.close()


async def sdk_calls(n: int) -> list[float]:
    params = StdioServerParameters(command=CONFIG["command"], args=CONFIG["args"])
    async with Client(params) as client:
        await client.list_tools()
        times = []
        for _ in range(n):
            start = time.perf_counter()
            result = await client.call_tool("add", {"a": 1, "b": 2})
            times.append(time.perf_counter() - start)
            assert result.content[0].text == "3"
        return times


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    rows = [
        ("ossa MCPServerTool.call", ossa_calls(n)),
        ("mcp SDK Client.call_tool", asyncio.run(sdk_calls(n))),
    ]
    print(f"{'stdio add tool, ' + str(n) + ' calls':<28} {'median ms':>10} {'p90 ms':>8}")
    for name, times in rows:
        p90 = statistics.quantiles(times, n=10)[-1]
        print(f"{name:<28} {statistics.median(times) * 1e3:>10.2f} {p90 * 1e3:>8.2f}")


if __name__ == "__main__":
    main()
