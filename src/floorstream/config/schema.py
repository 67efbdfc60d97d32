"""The config file's JSON Schema, for editors (``floorstream schema``).

Built from the same models ``check`` validates with, one branch per plugin:

- a source is discriminated by ``adapter:`` (``if adapter is mqtt then the mqtt source's
  schema``), a sink by ``type:``, a ``detect`` entry by its one key; so an editor reports the
  keys of the adapter that was named, never a list of every adapter's complaints. An unknown
  adapter still gets the keys every source has checked;
- ``${ENV}`` references are accepted wherever a value may be written (they are resolved before
  validation), and so are the strings pydantic reads as numbers and booleans;
- durations are numbers or strings such as ``5m``; a ``detect`` entry is ``{name: {options}}``
  (or the bare name, when the detector needs no options) validated by that detector's model.

The schema never rejects what ``check`` accepts. ``check`` rejects more: what a schema cannot
say (a template that does not compile, a store driver that is not installed, names that must
refer to each other).
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from floorstream.config.settings import Settings
from floorstream.plugin.adapter import SourceConfig
from floorstream.plugin.sink import SinkConfig
from floorstream.plugins import Plugins

__all__ = ["ENV_REFERENCE", "config_json_schema"]

#: a ``${NAME}`` or ``${NAME:-default}`` reference somewhere in a string
ENV_REFERENCE = r"\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}"
_ENV = {"type": "string", "pattern": ENV_REFERENCE}
# what pydantic's lax mode reads from a string (a quoted YAML value, an ${ENV} default)
_LAX: dict[str, dict[str, Any]] = {
    "integer": {"type": "string", "pattern": r"^\s*[+-]?[0-9]+\s*$"},
    "number": {"type": "string",
               "pattern": r"^\s*[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?\s*$"},
    "boolean": {"type": "string", "pattern": r"^\s*([tT]([rR][uU][eE])?|[fF]([aA][lL][sS][eE])?|"
                                              r"[yY]([eE][sS])?|[nN][oO]?|[oO][nN]|[oO][fF][fF]|"
                                              r"0|1)\s*$"},
}
_ANNOTATIONS = ("title", "description", "default", "examples", "deprecated")
# parse_duration reads "5 m" and " 10s "; the pattern Duration exports does not allow spaces
_DURATION_EXPORTED = r"^\d+(\.\d+)?(ms|s|m|h|d)?$"
_DURATION_READ = r"^\s*\d+(\.\d+)?\s*(ms|s|m|h|d)?\s*$"


def config_json_schema(plugins: Plugins) -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of the config file with every installed adapter, detector
    and sink, so an editor (VS Code's YAML extension, for one) can complete and check it."""
    adapters = [(e.name, e.item.config_model) for e in plugins.adapters]
    sinks = [(e.name, e.item.config_model) for e in plugins.sinks]
    detectors = [(e.name, e.item.options_model) for e in plugins.detectors
                 if hasattr(e.item, "on_change") and hasattr(e.item, "options_model")]
    models: list[type[BaseModel]] = [Settings, SourceConfig, SinkConfig]
    for _, model in (*adapters, *sinks, *detectors):
        if model not in models:
            models.append(model)
    refs, generated = models_json_schema([(m, "validation") for m in models],
                                         ref_template="#/$defs/{model}")
    defs: dict[str, Any] = generated.get("$defs", {})

    def definition(model: type[BaseModel]) -> dict[str, Any]:
        name = refs[(model, "validation")]["$ref"].removeprefix("#/$defs/")
        return copy.deepcopy(defs[name])

    detect = _detect_schema(detectors, refs, defs)
    source_branches: dict[str, Any] = {}
    for name, model in adapters:
        source_branches[name] = _entry(definition(model), model, "adapter", name, detect)
    any_source = _entry(definition(SourceConfig), SourceConfig, "adapter", None, detect)
    sink_branches = {name: _entry(definition(model), model, "type", name, None)
                     for name, model in sinks}
    any_sink = _entry(definition(SinkConfig), SinkConfig, "type", None, None)

    root = definition(Settings)
    for key, branches, fallback, prefix in (("sources", source_branches, any_source, "source"),
                                            ("sinks", sink_branches, any_sink, "sink")):
        discriminator = "adapter" if key == "sources" else "type"
        for name, schema in branches.items():
            defs[f"{prefix}.{name}"] = schema
        defs[f"{prefix}.unknown"] = fallback
        item = _discriminated(discriminator, sorted(branches), prefix)
        root["properties"][key] = {**_annotations(root["properties"][key]), "type": "array",
                                   "items": item}
    result: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "floorstream configuration",
        **{k: v for k, v in root.items() if k != "title"},
    }
    result["$defs"] = {name: defs[name] for name in sorted(_reachable(result, defs))}
    widened: dict[str, Any] = _widen(result)
    return widened


def _reachable(schema: dict[str, Any], defs: dict[str, Any]) -> set[str]:
    """Names of the definitions the schema refers to, directly or through other ones."""
    found: set[str] = set()
    stack: list[Any] = [{k: v for k, v in schema.items() if k != "$defs"}]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                name = ref.removeprefix("#/$defs/")
                if name not in found and name in defs:
                    found.add(name)
                    stack.append(defs[name])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def _annotations(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k in ("title", "description")}


def _discriminated(key: str, names: list[str], prefix: str) -> dict[str, Any]:
    """An entry whose ``key`` picks its schema: ``if key is X then X's schema``, one branch
    per name, and the keys every entry has when the name is unknown (or missing)."""
    branches: list[dict[str, Any]] = [
        {"if": {"properties": {key: {"const": name}}, "required": [key]},
         "then": {"$ref": f"#/$defs/{prefix}.{name}"}}
        for name in names]
    branches.append({"if": {"properties": {key: {"not": {"enum": names}}}},
                     "then": {"$ref": f"#/$defs/{prefix}.unknown"}})
    return {"type": "object", "required": [key],
            "properties": {key: {"enum": names} if names else {"type": "string"}},
            "allOf": branches}


def _entry(schema: dict[str, Any], model: type[BaseModel], key: str, name: str | None,
           detect: dict[str, Any] | None) -> dict[str, Any]:
    """One adapter's source schema (or one sink type's): its model with ``key`` fixed to
    ``name`` and ``detect`` in the shape the config file writes it."""
    properties = schema.setdefault("properties", {})
    if name is not None:
        properties[key] = {"const": name}
    else:  # an unknown or missing adapter/type: its own keys cannot be known
        schema["additionalProperties"] = True
        schema["required"] = [r for r in schema.get("required", []) if r != key]
    if detect is not None and "detect" in properties:
        properties["detect"] = {**_annotations(properties["detect"]), **detect}
    if _rewrites_input(model):
        # a "before" validator (a shorthand folded into other keys): keys it accepts are
        # unknown here, so only the listed ones are checked; `floorstream check` does the rest
        schema["additionalProperties"] = True
        schema["$comment"] = ("this adapter also accepts keys it folds into the listed ones "
                              "(a shorthand); `floorstream check` validates them")
    return schema


def _rewrites_input(model: type[BaseModel]) -> bool:
    validators = model.__pydantic_decorators__.model_validators.values()
    return any(v.info.mode in ("before", "wrap") for v in validators)


def _detect_schema(detectors: list[tuple[str, type[BaseModel]]],
                   refs: dict[Any, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """``detect:``: a list of ``{name: {options}}`` (``{name: null}`` or the bare ``name``
    when its options need no key), each checked by that detector's options model."""
    names = [name for name, _ in detectors]
    bare = []
    branches = []
    for name, model in detectors:
        ref = refs[(model, "validation")]
        required = defs[ref["$ref"].removeprefix("#/$defs/")].get("required", [])
        options: dict[str, Any] = ref if required else {"anyOf": [ref, {"type": "null"}]}
        if not required:
            bare.append(name)
        branches.append({"if": {"required": [name]},
                         "then": {"properties": {name: options}}})
    entry = {
        "if": {"type": "string"},
        "then": {"enum": bare},
        "else": {"type": "object", "minProperties": 1, "maxProperties": 1,
                 "propertyNames": {"enum": names}, "allOf": branches},
    }
    return {"type": "array", "items": entry}


def _scalar_type(schema: dict[str, Any]) -> str | None:
    values = [*schema.get("enum", []), *([schema["const"]] if "const" in schema else [])]
    if any(not isinstance(v, str) for v in values):
        return None  # Literal[0, 1, 2]: pydantic takes no string for it, not even "1"
    kind = schema.get("type")
    if kind in _LAX:
        return str(kind)
    if kind == "string" and any(k in schema for k in ("pattern", "enum", "const", "format",
                                                     "minLength", "maxLength")):
        return "string"
    if kind is None and ("enum" in schema or "const" in schema):
        return "string"
    return None


def _widen(schema: Any) -> Any:
    """Accept an ``${ENV}`` reference (and pydantic's lax strings) wherever a constrained
    scalar is expected: ``port: ${SMTP_PORT}`` is resolved before validation."""
    if isinstance(schema, list):
        return [_widen(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ("properties", "patternProperties", "$defs"):
            out[key] = {k: _widen(v) for k, v in value.items()}
        elif key in ("items", "additionalProperties", "then", "else", "anyOf", "oneOf",
                     "allOf", "prefixItems"):
            out[key] = _widen(value)
        elif key == "pattern" and value == _DURATION_EXPORTED:
            out[key] = _DURATION_READ
        else:  # "if", "not", "propertyNames", "const", keywords: as they are
            out[key] = value
    kind = _scalar_type(out)
    if kind is None:
        return out
    annotations = {k: v for k, v in out.items() if k in _ANNOTATIONS}
    constraint = {k: v for k, v in out.items() if k not in _ANNOTATIONS}
    alternatives = [constraint, _ENV] + ([_LAX[kind]] if kind in _LAX else [])
    return {**annotations, "anyOf": alternatives}
