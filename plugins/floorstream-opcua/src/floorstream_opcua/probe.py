"""``floorstream check`` for an OPC UA source: connect as the daemon would, and say which
items the server does not have, before the daemon runs into them one ``source.problem`` at a
time. Nothing is written; the session is closed again."""

from __future__ import annotations

import asyncio
from typing import Any

from asyncua import ua
from asyncua.ua.attribute_ids import AttributeIds

from .config import OpcuaConfig
from .connect import close_client, open_client
from .session import browse_path

__all__ = ["probe"]


class _Quiet:
    """The session's log lines have no place in ``check``: what they would say (an empty
    trust list) is one of the config's own warnings there."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


def probe(config: OpcuaConfig) -> list[str]:
    return asyncio.run(_probe(config))


async def _probe(config: OpcuaConfig) -> list[str]:
    warnings: list[str] = []
    client = await open_client(config, _Quiet())
    try:
        nodes = [(index, item) for index, item in enumerate(config.items)
                 if item.node is not None]
        paths = [(index, item) for index, item in enumerate(config.items)
                 if item.path is not None]
        for start in range(0, len(nodes), config.batch):
            chunk = nodes[start:start + config.batch]
            values = await client.uaclient.read_attributes(
                [ua.NodeId.from_string(item.node or "") for _, item in chunk],
                AttributeIds.NodeClass)
            for (index, item), value in zip(chunk, values, strict=True):
                status = value.StatusCode
                if status is not None and not status.is_good():
                    warnings.append(f"items[{index}]: {item.node}: {status.name}")
        for start in range(0, len(paths), config.batch):
            chunk = paths[start:start + config.batch]
            results = await client.uaclient.translate_browsepaths_to_nodeids(
                [browse_path(item) for _, item in chunk])
            for (index, item), result in zip(chunk, results, strict=True):
                if not result.StatusCode.is_good() or not result.Targets:
                    warnings.append(f"items[{index}]: browse path {item.path} not found "
                                    f"({result.StatusCode.name})")
    finally:
        await close_client(client)
    return warnings
