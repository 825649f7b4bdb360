"""ossa: run gpt-oss as a tool-using agent (harmony, a packed-MXFP4 engine, browser, sandboxed python)."""

__version__ = "0.1.0"
