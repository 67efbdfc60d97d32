"""Summary templates that are field substitutions, rendered without importing Jinja2.

Importing Jinja2 costs a daemon ~1.9 MB of RSS (issue 16 asks for at most 60 MiB), and the
templates of a typical config only put fields into text: ``{{ fields.before }}->{{
fields.after }}``, ``spindle temp {{ '%.1f' | format(fields.value) }} C``. For those, this
module does what Jinja2's sandbox (render.template_environment) would, byte for byte, and is
used where a template is rendered (render.Renderer), read for its fields
(interest.template_fields) and checked (config.checks.template_problem).

A template is *plain* when it is literal text and ``{{ expr }}`` only (no ``{%``, ``{#``,
whitespace control, ``\\r``), each ``expr`` one of

- a chain: a context name (:data:`ROOTS`; not ``event``, an object) then ``.name``
  (``[A-Za-z][A-Za-z0-9_]*``) or ``["key"]`` lookups, neither a dict attribute (Jinja2's
  sandbox prefers ``fields.items`` the method to the key) nor starting with ``_``;
- a chain then ``| f`` for the renderer's own filters (:data:`FILTERS`), without arguments;
- ``'literal' | format(value, ...)``, each value a chain with own filters: ``str % args``.

Anything else is Jinja2's, exactly as before. Rendering a plain template looks up dicts only:
a missing key gives ``''`` as ChainableUndefined prints (and so does a lookup on it), and
everything else that Jinja2 would treat its own way (a lookup on a non-dict, a missing value
given to a filter or to format, any exception, a format that fails) renders that one context
with Jinja2 instead (the template compiled on first need), so the outcome is Jinja2's by
construction. tests/test_plain_templates.py compares both on generated templates.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from floorstream.plugin import phrasing

if TYPE_CHECKING:
    import jinja2

__all__ = ["FILTERS", "ROOTS", "PlainTemplate", "Template", "compile_template", "parse"]

#: names of render._context a plain template may start from (``event`` is an object: Jinja2's)
ROOTS = frozenset({"fields", "subject", "source", "type", "severity", "attrs", "change", "row",
                   "before", "default"})

#: the renderer's own filters (render.template_environment installs the same ones)
FILTERS: Mapping[str, Callable[[Any], str]] = {
    "duration": phrasing.duration,
    "number": phrasing.number,
    "value": phrasing.value,
    "quantity": phrasing.quantity,
    "clock": phrasing.clock,  # {{ event.occurred_at | clock }}: 10:15 CET
}

#: template names that hold payload fields (interest._DATA_NAMES)
_DATA_NAMES = ("row", "before")

_SPACE = r"[ \t\n]*"
_STRING = r"""'[^'\\{}\n]*'|"[^"\\{}\n]*\""""
_CHAIN = rf"[a-z]+(?:\.[A-Za-z][A-Za-z0-9_]*|\[(?:{_STRING})\])*"
_VALUE = rf"{_CHAIN}(?:{_SPACE}\|{_SPACE}[a-z]+)*"
_VALUE_RE = re.compile(rf"({_CHAIN})((?:{_SPACE}\|{_SPACE}[a-z]+)*)")
_FORMAT_RE = re.compile(
    rf"({_STRING}){_SPACE}\|{_SPACE}format{_SPACE}\({_SPACE}"
    rf"({_VALUE}(?:{_SPACE},{_SPACE}{_VALUE})*){_SPACE}\)")
_LOOKUP_RE = re.compile(rf"\.([A-Za-z][A-Za-z0-9_]*)|\[({_STRING})\]")
_SPLIT_RE = re.compile(rf"{_SPACE},{_SPACE}")
_FILTER_RE = re.compile(rf"{_SPACE}\|{_SPACE}")
_EXPR_RE = re.compile(r"\{\{[ \t\n]*(.*?)[ \t\n]*\}\}", re.S)
_DICT_ATTRIBUTES = frozenset(dir(dict))


class Template(Protocol):
    """What the renderer calls: a plain template or a Jinja2 one."""

    def render(self, *args: Any, **kwargs: Any) -> str: ...


class _Fallback(Exception):
    """This context is Jinja2's to render (a lookup on a non-dict, a missing value used)."""


class _Missing:
    """A key not found: prints as ``''``, as Jinja2's ChainableUndefined does."""

    __slots__ = ()


_MISSING = _Missing()

#: a chain: its root name and the keys looked up in turn
_Chain = tuple[str, tuple[str, ...]]
#: a value: a chain and the own filters applied in turn
_Value = tuple[_Chain, tuple[str, ...]]


class Parsed:
    """A plain template's parts: literal text, or an expression (values, a format or None)."""

    __slots__ = ("parts",)

    def __init__(self, parts: list[str | tuple[str | None, tuple[_Value, ...]]]) -> None:
        self.parts = parts

    def fields(self) -> frozenset[str] | None:
        """What interest.template_fields' walk of the Jinja2 tree finds: ``row.X``,
        ``row["X"]``, ``before.X`` give ``X``; ``row`` or ``before`` alone: anything (None)."""
        found: set[str] = set()
        for part in self.parts:
            if isinstance(part, str):
                continue
            for (root, keys), _ in part[1]:
                if root in _DATA_NAMES:
                    if not keys:
                        return None
                    found.add(keys[0])
        return frozenset(found)


def _literal(token: str) -> str:
    return token[1:-1]


def _chain(text: str) -> _Chain | None:
    root = re.match(r"[a-z]+", text)
    if root is None or root.group() not in ROOTS:
        return None
    keys: list[str] = []
    at = root.end()
    while at < len(text):
        lookup = _LOOKUP_RE.match(text, at)
        if lookup is None:
            return None
        key = lookup.group(1) if lookup.group(1) is not None else _literal(lookup.group(2))
        # the sandbox looks a dict attribute up before the key; ChainableUndefined refuses
        # "__x" subscripts; either way: Jinja2's
        if key.startswith("_") or key in _DICT_ATTRIBUTES or hasattr({}, key):
            return None
        keys.append(key)
        at = lookup.end()
    return root.group(), tuple(keys)


def _value(text: str) -> _Value | None:
    match = _VALUE_RE.fullmatch(text)
    if match is None:
        return None
    chain = _chain(match.group(1))
    filters = tuple(f for f in _FILTER_RE.split(match.group(2)) if f)
    if chain is None or any(f not in FILTERS for f in filters):
        return None
    return chain, filters


def _expression(text: str) -> tuple[str | None, tuple[_Value, ...]] | None:
    form = _FORMAT_RE.fullmatch(text)
    if form is None:
        value = _value(text)
        return None if value is None else (None, (value,))
    values = [_value(v) for v in _SPLIT_RE.split(form.group(2))]
    if any(v is None for v in values):
        return None
    return _literal(form.group(1)), tuple(v for v in values if v is not None)


def parse(text: str) -> Parsed | None:
    """``text``'s parts when it is a plain template (see the module docstring), else None."""
    if "{%" in text or "{#" in text or "\r" in text:
        return None
    if text.endswith("\n"):  # Jinja2 drops one (keep_trailing_newline=False)
        text = text[:-1]
    parts: list[str | tuple[str | None, tuple[_Value, ...]]] = []
    at = 0
    for match in _EXPR_RE.finditer(text):
        parsed = _expression(match.group(1))
        if parsed is None:
            return None
        if match.start() > at:
            parts.append(text[at:match.start()])
        parts.append(parsed)
        at = match.end()
    rest = text[at:]
    if "{{" in rest:  # not closed
        return None
    if rest:
        parts.append(rest)
    return Parsed(parts)


def _lookup(context: Mapping[str, Any], chain: _Chain) -> Any:
    root, keys = chain
    value = context.get(root, _MISSING)
    for key in keys:
        if value.__class__ is dict:
            value = value.get(key, _MISSING)
        elif value is _MISSING:
            return value
        else:
            raise _Fallback
    return value


def _render_value(spec: _Value) -> Callable[[Mapping[str, Any]], Any]:
    chain, filters = spec
    functions = tuple(FILTERS[f] for f in filters)
    if not functions:
        return lambda context: _lookup(context, chain)

    def filtered(context: Mapping[str, Any]) -> Any:
        value = _lookup(context, chain)
        if value is _MISSING:
            raise _Fallback
        for function in functions:
            value = function(value)
        return value

    return filtered


def _output(part: tuple[str | None, tuple[_Value, ...]]) -> Callable[[Mapping[str, Any]], str]:
    form, specs = part
    values = tuple(_render_value(s) for s in specs)
    if form is None:
        (only,) = values

        def show(context: Mapping[str, Any]) -> str:
            value = only(context)
            return "" if value is _MISSING else str(value)

        return show

    def formatted(context: Mapping[str, Any]) -> str:
        args = tuple(v(context) for v in values)
        if any(a is _MISSING for a in args):
            raise _Fallback
        return str(form % args)

    return formatted


class PlainTemplate:
    """A plain template, compiled; ``render`` as :meth:`jinja2.Template.render` (a mapping)."""

    __slots__ = ("_jinja", "_outputs", "_sandbox", "source")

    def __init__(self, source: str, parsed: Parsed,
                 sandbox: Callable[[], jinja2.Environment]) -> None:
        self.source = source
        self._sandbox = sandbox
        self._jinja: jinja2.Template | None = None
        self._outputs = tuple(p if isinstance(p, str) else _output(p) for p in parsed.parts)

    def render(self, *args: Any, **kwargs: Any) -> str:
        context: Mapping[str, Any] = dict(*args, **kwargs) if kwargs or len(args) != 1 \
            or not isinstance(args[0], dict) else args[0]
        try:
            return self.render_plain(context)
        except Exception:  # whatever it is, Jinja2's outcome is the answer
            return self.jinja().render(context)

    def render_plain(self, context: Mapping[str, Any]) -> str:
        """The plain path alone: raises where :meth:`render` leaves the context to Jinja2."""
        return "".join([o if o.__class__ is str else o(context)  # type: ignore[operator]
                        for o in self._outputs])

    def jinja(self) -> jinja2.Template:
        """The same template in the Jinja2 sandbox, for a context the plain path leaves to it."""
        if self._jinja is None:
            self._jinja = self._sandbox().from_string(self.source)
        return self._jinja


def compile_template(text: str, sandbox: Callable[[], jinja2.Environment]) -> Template:
    """A :class:`PlainTemplate` when ``text`` is plain, else Jinja2's (``sandbox()`` is called
    only then, or when a plain one first meets a context it leaves to Jinja2)."""
    parsed = parse(text)
    if parsed is None:
        return sandbox().from_string(text)
    return PlainTemplate(text, parsed, sandbox)
