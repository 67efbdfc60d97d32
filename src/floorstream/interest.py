"""What a source's consumers read of its payloads: the :class:`~floorstream.plugin.Interest`
an adapter may use to read less.

A Sparkplug DDATA message of ten metrics of which two are watched costs its decoder and
session four times what the two cost (protobuf's Python API charges per attribute read), so
the host works out, once per source, which top-level payload fields anyone reads:

- each detector's :meth:`~floorstream.plugin.Detector.reads` (None, the default, means
  "everything", and then so does the source);
- the source's summary templates: ``row.X``, ``row["X"]``, ``before.X`` name field ``X``;
  any other use of ``row``, ``before`` or ``event`` (``row.items()``, ``row[name]``,
  ``event.change``) may read anything;
- a plugin's ``render_post`` or ``route_post`` hook sees the whole event, Change included:
  with one registered, everything.

Routes match event types, subjects, severities and attrs, never payload fields; the mqtt
adapter's subject and attrs templates read the message as decoded, before any field is left
out. The presence lag is the smallest a detector asks for (``silence``), and at most a
second (the source's event-time watermark, floorstream.timebase).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from floorstream.plaintemplate import parse
from floorstream.plugin import Detector, Interest

if TYPE_CHECKING:
    from jinja2 import nodes

__all__ = ["source_interest", "template_fields"]

#: template names that hold payload fields (render._context): ``row``, ``before``
_DATA_NAMES = ("row", "before")
_DICT_METHODS = frozenset(dir(dict))
#: the watermark's lag at most (seconds of wall time)
WATERMARK_LAG = 1.0


def source_interest(detectors: Iterable[Detector],
                    summary: str | Mapping[str, str] | None,
                    plugin_hooks: bool) -> Interest:
    """The fields read of one source's payloads (see the module docstring)."""
    if plugin_hooks:
        return Interest()
    fields: set[str] = set()
    lags = [WATERMARK_LAG]
    for detector in detectors:
        read = detector.reads()
        if read is None:
            return Interest()
        fields |= read
        lag = detector.presence_lag()
        if lag is not None:
            lags.append(lag)
    texts = [summary] if isinstance(summary, str) else list((summary or {}).values())
    for text in texts:
        used = template_fields(text)
        if used is None:
            return Interest()
        fields |= used
    return Interest(frozenset(fields), min(lags))


def template_fields(text: str) -> frozenset[str] | None:
    """The payload fields a summary template reads, or None when it may read any (or does
    not parse: then it is the renderer's problem, and nothing is left out). A plain template
    (floorstream.plaintemplate) is read without Jinja2, to the same answer."""
    plain = parse(text)
    if plain is not None:
        return plain.fields()
    import jinja2  # only for a source with a summary template that is not plain

    try:
        tree = jinja2.Environment().parse(text)
    except jinja2.TemplateSyntaxError:
        return None
    found: set[str] = set()
    if not _walk(tree, None, found):
        return None
    return frozenset(found)


def _walk(node: nodes.Node, parent: nodes.Node | None, found: set[str]) -> bool:
    """Collect ``row.X`` / ``row["X"]`` fields under ``node``; False for a use that may read
    anything."""
    from jinja2 import nodes  # imported by template_fields already: a lookup

    if isinstance(node, nodes.Name) and node.ctx == "load":
        if node.name == "event":
            return not (isinstance(parent, nodes.Getattr) and parent.attr == "change")
        if node.name in _DATA_NAMES:
            if isinstance(parent, nodes.Getattr) and parent.node is node:
                if parent.attr in _DICT_METHODS:  # row.get(name), row.items(): anything
                    return False
                found.add(parent.attr)
                return True
            key: Any = getattr(getattr(parent, "arg", None), "value", None)
            if isinstance(parent, nodes.Getitem) and parent.node is node and \
                    isinstance(parent.arg, nodes.Const) and isinstance(key, str):
                found.add(key)
                return True
            return False
    return all(_walk(child, node, found) for child in node.iter_child_nodes())
