"""YAML with line numbers and ``${ENV}`` references.

Config errors must point at a line; PyYAML's composed node tree knows the line of every key, so
the loader keeps a map from key path to line beside the plain data. Environment references are
resolved after parsing, value by value, and every value that came from the environment is
remembered as a secret so logs can redact it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from floorstream.errors import ConfigProblem

__all__ = ["LoadedYaml", "Path", "load_yaml"]

Path = tuple[str | int, ...]
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass
class LoadedYaml:
    data: Any
    lines: dict[Path, int]
    file: str
    secrets: set[str] = field(default_factory=set)
    problems: list[ConfigProblem] = field(default_factory=list)

    def line_of(self, path: Path) -> int | None:
        """The line of ``path`` or of its nearest ancestor that has one."""
        for cut in range(len(path), -1, -1):
            line = self.lines.get(path[:cut])
            if line is not None:
                return line
        return None

    def problem(self, path: Path, message: str) -> ConfigProblem:
        return ConfigProblem(self.file, format_path(path), self.line_of(path), message)


def format_path(path: Path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _index_lines(node: yaml.Node, path: Path, lines: dict[Path, int]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            child = (*path, key)
            lines[child] = key_node.start_mark.line + 1
            _index_lines(value_node, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _index_lines(item, (*path, index), lines)


def load_yaml(text: str, file: str, environ: Mapping[str, str] | None = None) -> LoadedYaml:
    """Parse ``text``; syntax errors and unset variables become problems, never exceptions."""
    env = os.environ if environ is None else environ
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else {}
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        msg = f"YAML syntax error: {exc.problem}" + (f" ({exc.context})" if exc.context else "")
        return LoadedYaml({}, {}, file, problems=[ConfigProblem(file, "", line, msg)])
    finally:
        loader.dispose()
    lines: dict[Path, int] = {}
    if node is not None:
        _index_lines(node, (), lines)
    loaded = LoadedYaml(data if data is not None else {}, lines, file)
    loaded.data = _substitute(loaded.data, (), env, loaded)
    return loaded


def _substitute(value: Any, path: Path, env: Mapping[str, str], loaded: LoadedYaml) -> Any:
    if isinstance(value, dict):
        return {k: _substitute(v, (*path, k), env, loaded) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, (*path, i), env, loaded) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        resolved = env.get(name, default)
        if resolved is None:
            loaded.problems.append(loaded.problem(
                path, f"environment variable {name} is not set (write ${{{name}:-default}} "
                      "to give a default)"))
            return ""
        if resolved:
            loaded.secrets.add(resolved)
        return resolved

    return _ENV.sub(replace, value)
