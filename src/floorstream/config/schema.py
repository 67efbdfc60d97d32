"""The config file's JSON Schema, for editors (``floorstream schema``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, create_model

from floorstream.config.settings import Settings
from floorstream.plugins import Plugins

__all__ = ["config_json_schema"]


def config_json_schema(plugins: Plugins) -> dict[str, Any]:
    """JSON Schema of the config file with every installed adapter, detector and sink, so an
    editor (VS Code's YAML extension, for one) can complete and check it."""
    detector_items = []
    for entry in plugins.detectors:
        options = getattr(entry.item, "options_model", None)
        if options is None:
            continue
        fields: dict[str, Any] = {entry.name: (options, ...)}
        detector_items.append(create_model(f"Detect_{entry.name}",
                                           __config__=ConfigDict(extra="forbid"), **fields))
    source_models = []
    for entry in plugins.adapters:
        source_models.append(entry.item.config_model)
    sink_models = [entry.item.config_model for entry in plugins.sinks]

    defs: dict[str, Any] = {}

    def schema_of(model: type[BaseModel]) -> dict[str, Any]:
        s = model.model_json_schema(ref_template="#/$defs/{model}")
        defs.update(s.pop("$defs", {}))
        return s

    schema = schema_of(Settings)
    detect_schema = {"type": "array", "items": {"anyOf": [schema_of(m) for m in detector_items]}}
    sources_any = []
    for entry, model in zip(plugins.adapters, source_models, strict=True):
        s = schema_of(model)
        s["properties"]["adapter"] = {"const": entry.name}
        s["properties"]["detect"] = detect_schema
        s["properties"]["summary"] = {"anyOf": [{"type": "string"}, {"type": "object",
                                                "additionalProperties": {"type": "string"}},
                                                {"type": "null"}]}
        sources_any.append(s)
    sinks_any = []
    for entry, model in zip(plugins.sinks, sink_models, strict=True):
        s = schema_of(model)
        s["properties"]["type"] = {"const": entry.name}
        sinks_any.append(s)
    # an empty anyOf is not a valid schema: with no plugin of a kind installed, no entry fits
    schema["properties"]["sources"] = ({"type": "array", "items": {"anyOf": sources_any}}
                                       if sources_any else {"type": "array", "maxItems": 0})
    schema["properties"]["sinks"] = ({"type": "array", "items": {"anyOf": sinks_any}}
                                     if sinks_any else {"type": "array", "maxItems": 0})
    for model_schema in (schema, *defs.values()):
        for prop in model_schema.get("properties", {}).values():
            if isinstance(prop, dict) and "default_factory" in prop:
                prop.pop("default_factory")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "floorstream configuration"
    schema["$defs"] = defs
    return schema
