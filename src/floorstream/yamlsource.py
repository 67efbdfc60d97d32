"""YAML with line numbers and ``${ENV}`` references, guarded against hostile files.

Config errors must point at a line; PyYAML's composed node tree knows the line of every key, so
the loader keeps a map from key path to line beside the plain data. Environment references are
resolved after parsing, value by value, and every value that came from the environment is
remembered as a secret so logs can redact it.

A config file is input like any other, so reading one is bounded before anything is built
from it: at most :data:`MAX_BYTES`, UTF-8 only, nesting at most :data:`MAX_DEPTH` deep and at
most :data:`MAX_NODES` values once aliases are expanded (a "billion laughs" file is refused
after a few thousand steps, not after it filled the memory). Duplicate keys are errors, not
"the last one wins". Every one of these is a :class:`ConfigProblem`, never an exception.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from floorstream.errors import ConfigProblem

__all__ = ["MAX_BYTES", "MAX_DEPTH", "MAX_NODES", "LoadedYaml", "Path", "format_path",
           "load_yaml", "read_text"]

Path = tuple[str | int, ...]
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

#: the largest config file read (a real one is a few kilobytes)
MAX_BYTES = 10 * 1024 * 1024
#: the deepest nesting of mappings and lists, aliases expanded
MAX_DEPTH = 64
#: the most values (keys, scalars, mappings, lists) once aliases are expanded
MAX_NODES = 100_000

_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass
class LoadedYaml:
    data: Any
    lines: dict[Path, int]
    file: str
    secrets: set[str] = field(default_factory=set)
    problems: list[ConfigProblem] = field(default_factory=list)
    #: the file has no content at all (empty, or only comments)
    empty: bool = False
    #: key paths whose ``${VAR}`` was unset (their stand-in '' is not worth a second problem)
    unset: set[str] = field(default_factory=set)

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


def read_text(path: str | os.PathLike[str]) -> tuple[str | None, list[ConfigProblem]]:
    """A config file's text, or the problems that keep it from being read: missing, not a
    file, larger than :data:`MAX_BYTES`, not UTF-8 (a UTF-8 byte-order mark is allowed)."""
    file = str(path)
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
        return None, [ConfigProblem(file, "", None, f"cannot read: {reason}")]
    if len(raw) > MAX_BYTES:
        return None, [ConfigProblem(file, "", None, f"the file is larger than "
                                    f"{MAX_BYTES // (1024 * 1024)} MiB; a config is a few "
                                    "kilobytes")]
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return None, [ConfigProblem(file, "", 1, "the file is UTF-16; save it as UTF-8")]
    try:
        return raw.decode("utf-8-sig"), []
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        return None, [ConfigProblem(file, "", line, f"not UTF-8 text: byte "
                                    f"0x{raw[exc.start]:02x} at column {column}; save the "
                                    "file as UTF-8")]


class _TooDeep(Exception):
    def __init__(self, line: int | None) -> None:
        self.line = line


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing nesting deeper than :data:`MAX_DEPTH` while it composes
    (the composer recurses per level: a 200,000 deep file would exhaust the stack)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise _TooDeep(mark.line + 1 if mark is not None else None)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class _Refused(Exception):
    def __init__(self, line: int | None, message: str) -> None:
        self.line, self.message = line, message


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _measure(root: yaml.Node) -> None:
    """Refuse a node graph whose expansion is too big or too deep, or that contains itself.

    Aliases make the composed graph a DAG (or a cycle): sizes and depths are computed once
    per node, bottom-up and without recursion, so a billion-laughs file costs a few thousand
    steps before it is refused.
    """
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        line = node.start_mark.line + 1
        if finished:
            on_path.discard(key)
            kids = _children(node)
            size[key] = 1 + sum(size[id(k)] for k in kids)
            depth[key] = 1 + max((depth[id(k)] for k in kids), default=0)
            if size[key] > MAX_NODES:
                raise _Refused(line, f"the file expands to more than {MAX_NODES} values "
                                     "(aliases are expanded); refused")
            if depth[key] > MAX_DEPTH:
                raise _Refused(line, f"nesting deeper than {MAX_DEPTH} levels (aliases "
                                     "expanded); refused")
            continue
        if key in size:
            continue
        on_path.add(key)
        stack.append((node, True))
        for kid in _children(node):
            if id(kid) in on_path:
                raise _Refused(kid.start_mark.line + 1,
                               "an alias refers to the node that contains it (a recursive "
                               "structure); refused")
            if id(kid) not in size:
                stack.append((kid, False))


def _index_lines(node: yaml.Node, path: Path, lines: dict[Path, int],
                 duplicates: dict[Path, str], checked: set[int]) -> None:
    """Record the line of every key path, and every key written twice in one mapping (YAML
    says keys are unique; PyYAML would silently keep the last one)."""
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        first_check = id(node) not in checked
        checked.add(id(node))
        first: dict[tuple[str, str], int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            child = (*path, key)
            line = key_node.start_mark.line + 1
            if (first_check and isinstance(key_node, yaml.ScalarNode)
                    and key_node.tag != _MERGE_TAG):
                ident = (key_node.tag, key_node.value)
                if ident in first:
                    duplicates.setdefault(child, f"duplicate key {key!r} (first at line "
                                                 f"{first[ident]}); YAML keys must be unique")
                    lines[child] = line
                    continue
                first[ident] = line
            lines.setdefault(child, line)
            _index_lines(value_node, child, lines, duplicates, checked)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _index_lines(item, (*path, index), lines, duplicates, checked)


def load_yaml(text: str, file: str, environ: Mapping[str, str] | None = None) -> LoadedYaml:
    """Parse ``text``; syntax errors, limits and unset variables become problems, never
    exceptions. When parsing failed, ``data`` is ``{}`` and ``problems`` says why."""
    env = os.environ if environ is None else environ

    def refused(line: int | None, message: str) -> LoadedYaml:
        return LoadedYaml({}, {}, file, problems=[ConfigProblem(file, "", line, message)])

    if len(text) > MAX_BYTES:
        return refused(None, f"the text is larger than {MAX_BYTES // (1024 * 1024)} MiB")
    loader: _Loader | None = None
    try:
        loader = _Loader(text)
        node = loader.get_single_node()
        if node is None:
            return LoadedYaml({}, {}, file, empty=True)
        _measure(node)
        lines: dict[Path, int] = {}
        duplicates: dict[Path, str] = {}
        _index_lines(node, (), lines, duplicates, set())
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        msg = f"YAML syntax error: {exc.problem}" + (f" ({exc.context})" if exc.context else "")
        return refused(line, msg)
    except yaml.reader.ReaderError as exc:  # a control character: no mark, a position
        line = text.count("\n", 0, exc.position) + 1
        return refused(line, f"character U+{exc.character:04X} is not allowed in YAML")
    except yaml.YAMLError as exc:
        return refused(None, f"YAML error: {exc}")
    except _TooDeep as exc:
        return refused(exc.line, f"nesting deeper than {MAX_DEPTH} levels; refused")
    except _Refused as exc:
        return refused(exc.line, exc.message)
    except RecursionError:  # a last resort: the limits above should make it unreachable
        return refused(None, "the file is nested too deeply; refused")
    finally:
        if loader is not None:
            loader.dispose()
    loaded = LoadedYaml(data if data is not None else {}, lines, file)
    loaded.problems.extend(loaded.problem(path, message) for path, message in duplicates.items())
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
            loaded.unset.add(format_path(path))
            loaded.problems.append(loaded.problem(
                path, f"environment variable {name} is not set (write ${{{name}:-default}} "
                      "to give a default)"))
            return ""
        if resolved:
            loaded.secrets.add(resolved)
        return resolved

    return _ENV.sub(replace, value)
