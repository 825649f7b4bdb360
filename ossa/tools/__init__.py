"""The agent's tools: the toolbox, the built-in python tool, function tools, plugins and MCP.

The browser lives in :mod:`ossa.tools.browser`; :func:`build_toolbox` assembles any mix.
"""

from ossa.tools.base import Tool
from ossa.tools.functions import FunctionTool, tool
from ossa.tools.toolbox import Toolbox, build_toolbox

__all__ = ["FunctionTool", "Tool", "Toolbox", "build_toolbox", "tool"]
