"""floorstream-mtconnect: MTConnect machine tools as a floorstream source.

Two adapters, ``mtconnect.agent`` (an agent's REST API: probe, current, sample streaming) and
``mtconnect.shdr`` (an adapter's SHDR stream over TCP), and two detectors they imply,
``mtconnect.condition`` (alarms that open, change and clear, several per data item) and
``mtconnect.cycle`` ("cycle complete, part N"). See docs/mtconnect.md.
"""

from typing import TYPE_CHECKING

from floorstream.plugin import lazy_exports

if TYPE_CHECKING:
    from floorstream_mtconnect.agent import AgentConfig, AgentSource
    from floorstream_mtconnect.conditions import Conditions
    from floorstream_mtconnect.cycles import Cycles
    from floorstream_mtconnect.shdr import ShdrConfig, ShdrSource

__all__ = ["AgentConfig", "AgentSource", "Conditions", "Cycles", "ShdrConfig", "ShdrSource"]

#: imported on first use: the entry point (``hooks``) registers the adapters by reference,
#: so a daemon without MTConnect sources does not import them
_HOME = {"AgentConfig": "agent", "AgentSource": "agent", "Conditions": "conditions",
         "Cycles": "cycles", "ShdrConfig": "shdr", "ShdrSource": "shdr"}

__getattr__ = lazy_exports(__name__, _HOME)
