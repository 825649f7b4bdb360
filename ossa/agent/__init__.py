"""The agent: a harmony conversation driven by an engine, with tools, sessions and the CLI.

engine = open_engine("replay:examples/demo.jsonl")       # or "openai/gpt-oss-20b", a path
agent = Agent(engine, build_toolbox(["browser", "python"]), Settings(effort="low"))
for event in agent.run("How many bytes does one MXFP4 block take?"):
    ...                                                    # ossa.agent.events
"""

from ossa.agent.engines import EngineError, ReplayEngine, open_engine
from ossa.agent.events import TurnStatus
from ossa.agent.loop import Agent, Outcome, Step
from ossa.agent.sessions import Session, SessionStore
from ossa.agent.settings import Settings, load_config

__all__ = [
    "Agent",
    "Settings",
    "EngineError",
    "Outcome",
    "ReplayEngine",
    "Session",
    "SessionStore",
    "Step",
    "TurnStatus",
    "load_config",
    "open_engine",
]
