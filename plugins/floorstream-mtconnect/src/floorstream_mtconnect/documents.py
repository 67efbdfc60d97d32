"""The three MTConnect agent documents, read into plain records: Devices (``/probe``), Streams
(``/current``, ``/sample``) and Error (``OUT_OF_RANGE`` and friends).

Parsing goes through ``defusedxml``: an agent is a peer on the plant network, and a document
with a DTD or entity declarations is refused instead of expanded. Namespaces differ between
MTConnect versions (``urn:mtconnect.org:MTConnectStreams:1.4``, ``…:2.0``), so elements are
matched by their local name. Anything this module cannot make sense of raises
:class:`DocumentError` with a reason people can read; the adapters quarantine the document
with that reason and go on.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the XML parser loads with the first document (see _root)
    import xml.etree.ElementTree as ET

__all__ = ["AgentError", "DataItem", "DeviceModel", "DocumentError", "Header", "Observation",
           "Streams", "parse_devices", "parse_document", "parse_time"]

#: the block elements of a ComponentStream and the category of what they hold
_BLOCKS = {"Samples": "SAMPLE", "Events": "EVENT", "Condition": "CONDITION"}
#: the condition levels (element names inside a Condition block)
LEVELS = frozenset({"Normal", "Warning", "Fault", "Unavailable"})


class DocumentError(ValueError):
    """A document that is not well-formed XML or not an MTConnect document we can read."""


@dataclass(frozen=True, slots=True)
class DataItem:
    """One data item of the device model (``<DataItem>`` in a probe document)."""

    id: str
    name: str | None
    type: str
    category: str
    device: str
    component: str  # "Rotary C", "Path P1", "Controller": where it sits, as people say it
    component_id: str
    sub_type: str | None = None
    units: str | None = None

    @property
    def key(self) -> str:
        """The field name observations of this item get: its name, else its id."""
        return self.name or self.id


@dataclass
class DeviceModel:
    """What ``/probe`` says: data items by id and by name, per device."""

    items: dict[str, DataItem] = field(default_factory=dict)
    by_name: dict[str, DataItem] = field(default_factory=dict)
    devices: dict[str, str] = field(default_factory=dict)  # device name → uuid

    def find(self, key: str) -> DataItem | None:
        """An item by id or by name (SHDR keys may be either)."""
        return self.items.get(key) or self.by_name.get(key)


@dataclass(frozen=True, slots=True)
class Header:
    instance_id: str
    first_sequence: int
    last_sequence: int
    next_sequence: int
    creation_time: str = ""


@dataclass(frozen=True, slots=True)
class Observation:
    """One sample, event or condition of a Streams document (or one SHDR item)."""

    sequence: int
    timestamp: str
    item_id: str
    name: str | None
    element: str  # Position, Execution, Fault, …
    category: str  # SAMPLE, EVENT, CONDITION
    value: str
    device: str
    component: str
    component_id: str
    native_code: str = ""
    native_severity: str = ""
    qualifier: str = ""
    condition_type: str = ""  # the type attribute of a condition (AMPERAGE)
    text: str = ""  # a condition's message ("Spindle Motor Overload")
    #: a DATA_SET or TABLE representation's entries (``<Entry key="T1">12</Entry>``)
    entries: tuple[tuple[str, str], ...] | None = None


@dataclass(frozen=True, slots=True)
class Streams:
    header: Header
    observations: list[Observation]


@dataclass(frozen=True, slots=True)
class AgentError:
    """An MTConnectError document: ``OUT_OF_RANGE``, ``NO_DEVICE``, ``INVALID_REQUEST``…"""

    codes: tuple[str, ...]
    text: str
    header: Header | None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children(element: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in element if _local(c.tag) == name]


def _root(raw: bytes) -> ET.Element:
    # imported here: these data classes are also what the plugin's registration and its
    # detectors import, and a daemon with no MTConnect source should not load an XML parser
    import xml.etree.ElementTree as ET

    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring

    try:
        root = fromstring(raw)
    except DefusedXmlException as exc:
        raise DocumentError(f"refused: {type(exc).__name__} (DTDs and entities are not "
                            "accepted from an agent)") from exc
    except ET.ParseError as exc:
        raise DocumentError(f"not well-formed XML: {exc}") from exc
    assert isinstance(root, ET.Element)
    return root


def _int(element: ET.Element, name: str, default: int | None = None) -> int:
    value = element.get(name)
    if value is None:
        if default is not None:
            return default
        raise DocumentError(f"<{_local(element.tag)}> has no {name}")
    try:
        return int(value)
    except ValueError:
        raise DocumentError(f"<{_local(element.tag)}> {name}={value!r} is not a number") \
            from None


def _header(root: ET.Element, *, streams: bool) -> Header | None:
    found = _children(root, "Header")
    if not found:
        if streams:
            raise DocumentError(f"<{_local(root.tag)}> has no <Header>")
        return None
    head = found[0]
    instance = head.get("instanceId")
    if not instance:
        raise DocumentError("the <Header> has no instanceId")
    if not streams:
        return Header(instance, 0, 0, 0, head.get("creationTime", ""))
    return Header(instance, _int(head, "firstSequence"), _int(head, "lastSequence"),
                  _int(head, "nextSequence"), head.get("creationTime", ""))


def parse_document(raw: bytes) -> Streams | AgentError:
    """A Streams or an Error document (what ``/current`` and ``/sample`` answer)."""
    root = _root(raw)
    kind = _local(root.tag)
    if kind == "MTConnectError":
        errors = [e for block in _children(root, "Errors") for e in _children(block, "Error")]
        errors += _children(root, "Error")  # 1.0–1.2 put one Error right under the root
        codes = tuple(e.get("errorCode", "UNKNOWN") for e in errors) or ("UNKNOWN",)
        text = "; ".join((e.text or "").strip() for e in errors if (e.text or "").strip())
        header = None
        with contextlib.suppress(DocumentError):
            header = _header(root, streams=False)
        return AgentError(codes, text, header)
    if kind != "MTConnectStreams":
        raise DocumentError(f"expected MTConnectStreams or MTConnectError, got <{kind}>")
    header = _header(root, streams=True)
    assert header is not None
    observations: list[Observation] = []
    for streams in _children(root, "Streams"):
        for device in _children(streams, "DeviceStream"):
            device_name = device.get("name") or device.get("uuid") or "?"
            for component in _children(device, "ComponentStream"):
                observations.extend(_component(component, device_name))
    observations.sort(key=lambda o: o.sequence)  # documents are grouped, not in order
    return Streams(header, observations)


def _component(component: ET.Element, device: str) -> list[Observation]:
    kind = component.get("component", "")
    label = f"{kind} {component.get('name')}" if component.get("name") else kind
    component_id = component.get("componentId", "")
    found: list[Observation] = []
    for block in component:
        category = _BLOCKS.get(_local(block.tag))
        if category is None:
            continue
        for element in block:
            name = _local(element.tag)
            item = element.get("dataItemId")
            if not item:
                raise DocumentError(f"<{name}> in {label or device} has no dataItemId")
            if category == "CONDITION" and name not in LEVELS:
                raise DocumentError(f"<{name}> is not a condition level "
                                    "(Normal, Warning, Fault, Unavailable)")
            entries = tuple((e.get("key", ""), "".join(e.itertext()).strip())
                            for e in element if _local(e.tag) == "Entry") or None
            if entries is not None:
                value = text = ""
            elif len(element):  # mixed content (rare): all of its text
                value = text = "".join(element.itertext()).strip()
            else:
                value = text = (element.text or "").strip()
            if category == "CONDITION":
                value = name.upper()
            found.append(Observation(
                sequence=_int(element, "sequence"), timestamp=element.get("timestamp", ""),
                item_id=item, name=element.get("name"), element=name, category=category,
                value=value, device=device, component=label, component_id=component_id,
                native_code=element.get("nativeCode", ""),
                native_severity=element.get("nativeSeverity", ""),
                qualifier=element.get("qualifier", ""),
                condition_type=element.get("type", "") if category == "CONDITION" else "",
                text=text if category == "CONDITION" else "", entries=entries,
            ))
    return found


def parse_devices(raw: bytes) -> DeviceModel:
    """The device model of a probe document (also used for an SHDR source's ``probe:``)."""
    root = _root(raw)
    if _local(root.tag) != "MTConnectDevices":
        raise DocumentError(f"expected MTConnectDevices, got <{_local(root.tag)}>")
    model = DeviceModel()
    for devices in _children(root, "Devices"):
        for device in [*_children(devices, "Agent"), *_children(devices, "Device")]:
            name = device.get("name") or device.get("uuid") or device.get("id") or "?"
            model.devices[name] = device.get("uuid", "")
            _walk(device, name, "Device", device.get("id", ""), model)
    if not model.devices:
        raise DocumentError("the probe document lists no <Device>")
    return model


def _walk(element: ET.Element, device: str, label: str, component_id: str,
          model: DeviceModel) -> None:
    for block in _children(element, "DataItems"):
        for item in _children(block, "DataItem"):
            item_id, kind = item.get("id"), item.get("type")
            if not item_id or not kind:
                raise DocumentError(f"a <DataItem> in {label} has no id or type")
            data_item = DataItem(
                id=item_id, name=item.get("name"), type=kind,
                category=item.get("category", "EVENT"), device=device, component=label,
                component_id=component_id, sub_type=item.get("subType"),
                units=item.get("units"))
            model.items[item_id] = data_item
            if data_item.name:
                model.by_name.setdefault(data_item.name, data_item)
    for block in _children(element, "Components"):
        for child in block:
            kind = _local(child.tag)
            child_label = f"{kind} {child.get('name')}" if child.get("name") else kind
            _walk(child, device, child_label, child.get("id", ""), model)


@lru_cache(maxsize=4096)  # observations come in bursts that share their timestamp
def parse_time(value: str) -> datetime | None:
    """An MTConnect/SHDR timestamp (``2018-10-31T20:49:19.9981Z``, up to 7 fraction digits)
    as aware UTC; None when it is not one."""
    text = value.strip()
    if not text:
        return None
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    if "." in text:  # Python takes at most 6 fraction digits; SHDR writers send 7
        head, _, rest = text.partition(".")
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[:min(digits, 6)].ljust(6, '0')}{rest[digits:]}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
