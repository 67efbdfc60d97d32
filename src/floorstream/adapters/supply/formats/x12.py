"""X12 tokenizer: envelope-declared delimiters, interchange → groups → transaction sets.

No maintained, permissively licensed Python library reads logistics X12 (pyx12 ships HIPAA
maps only, badX12 was last released in 2018, bots is GPL), and the envelope rules are small,
so this is our own. The ISA segment declares the delimiters: its 4th character is the element
separator, ISA16 the component separator and the character right after ISA16 the segment
terminator, which real files set to ``~``, a newline or even U+2026 "…". Whitespace (CR/LF)
after a terminator is layout, not data. ISA elements are located by separator, not by fixed
column, because hand-edited files get the padding wrong.

Control numbers that disagree between header and trailer (ISA13/IEA02, GS06/GE02, ST02/SE02)
become warnings: the business content is still good and dropping it would lose a shipment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from floorstream.adapters.supply.formats.errors import ParseError
from floorstream.adapters.supply.formats.text import decode

__all__ = ["Interchange", "Segment", "TransactionSet", "tokenize"]


class Segment(NamedTuple):
    """One segment: its tag, its elements (``elements[1]`` is XX01) and where it was.

    A named tuple rather than a frozen dataclass: built ~25 times per ASN file, and a frozen
    dataclass's ``__init__`` sets each field through ``object.__setattr__`` (3x slower)."""

    tag: str
    elements: tuple[str, ...]
    number: int  # 1-based within the file
    offset: int

    def get(self, index: int, default: str = "") -> str:
        """Element ``index`` (1-based like the standard) stripped, or ``default``."""
        if index < len(self.elements):
            return self.elements[index].strip() or default
        return default


@dataclass(slots=True)
class TransactionSet:
    code: str  # ST01: 856, 214, 315
    control: str  # ST02
    group_control: str  # GS06
    version: str  # GS08
    segments: list[Segment] = field(default_factory=list)


@dataclass(slots=True)
class Interchange:
    sender: str  # ISA06 (qualifier ISA05 + id)
    receiver: str
    control: str  # ISA13
    component: str
    sets: list[TransactionSet] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def tokenize(raw: bytes) -> Interchange:
    """Split a whole X12 file into segments under its ISA-declared delimiters."""
    text = decode(raw).lstrip("\ufeff \r\n\t")
    if not text.startswith("ISA") or len(text) < 106:
        raise ParseError("not an X12 interchange: no ISA header", segment=1, offset=0)
    element = text[3]
    pos = 3
    for _ in range(16):  # ISA has 16 elements; ISA16 is one character
        pos = text.find(element, pos + 1) if _ else pos
        if pos < 0:
            raise ParseError("ISA header cut short", segment=1, offset=len(text))
    component = text[pos + 1:pos + 2]
    terminator = text[pos + 2:pos + 3]
    if not component or not terminator:
        raise ParseError("ISA header cut short", segment=1, offset=pos)
    if terminator.isalnum() or terminator == element:
        raise ParseError(f"ISA declares an unusable segment terminator {terminator!r}",
                         segment=1, offset=pos + 2)
    return _build(_segments(text, element, terminator), component)


#: layout and padding around segments (CR/LF after a terminator, NUL/SUB fill)
_PADDING = "\r\n \t\x00\x1a"


def _segments(text: str, element: str, terminator: str) -> list[Segment]:
    segments: list[Segment] = []
    append = segments.append
    offset = 0
    step = len(terminator)
    padding = _PADDING
    nul = "\x00" in text  # else no segment needs the check
    valid = _TAGS
    new = tuple.__new__  # a Segment without the named tuple's Python-level __new__
    for chunk in text.split(terminator):  # one split: a find and a slice per segment cost 2x
        start = offset
        offset += len(chunk) + step
        stripped = chunk.strip(padding)
        if not stripped:
            continue
        if chunk[0] in padding:
            start += len(chunk) - len(chunk.lstrip(padding))
        if nul and "\x00" in stripped:  # padding is stripped above; inside, it is binary
            raise ParseError("NUL byte inside a segment: binary data?",
                             segment=len(segments) + 1, offset=start + stripped.find("\x00"))
        parts = stripped.split(element)
        tag = parts[0]
        if tag not in valid:
            if not (2 <= len(tag) <= 3 and tag.isalnum() and tag.upper() == tag):
                raise ParseError(f"bad segment tag {tag[:12]!r}", segment=len(segments) + 1,
                                 offset=start)
            valid.add(tag)
        append(new(Segment, (tag, tuple(parts), len(segments) + 1, start)))
    return segments


#: segment tags seen to be well-formed (2-3 upper-case letters or digits): checked once each
_TAGS: set[str] = set()


def _build(segments: list[Segment], component: str) -> Interchange:
    isa = segments[0]
    if len(isa.elements) < 17:
        raise ParseError("ISA has fewer than 16 elements", segment=1, offset=isa.offset)
    inter = Interchange(sender=f"{isa.get(5)}:{isa.get(6)}", receiver=f"{isa.get(7)}:{isa.get(8)}",
                        control=isa.get(13), component=component)
    group: tuple[str, str] | None = None
    current: TransactionSet | None = None
    closed = False
    for seg in segments[1:]:
        if closed:
            raise ParseError(f"{seg.tag} after IEA", segment=seg.number, offset=seg.offset)
        if seg.tag == "GS":
            group = (seg.get(6), seg.get(8))
        elif seg.tag == "ST":
            if current is not None:
                raise ParseError(f"ST {seg.get(2)} opens before SE closed ST {current.control}",
                                 segment=seg.number, offset=seg.offset)
            if group is None:
                raise ParseError("ST outside a GS group", segment=seg.number, offset=seg.offset)
            current = TransactionSet(seg.get(1), seg.get(2), group[0], group[1], [seg])
        elif seg.tag == "SE":
            if current is None:
                raise ParseError("SE without ST", segment=seg.number, offset=seg.offset)
            current.segments.append(seg)
            _check_count(inter, current, seg)
            inter.sets.append(current)
            current = None
        elif seg.tag == "GE":
            if group is not None and seg.get(2) != group[0]:
                inter.warnings.append(f"GE02 {seg.get(2)} does not match GS06 {group[0]}")
            group = None
        elif seg.tag == "IEA":
            if seg.get(2) != inter.control:
                inter.warnings.append(f"IEA02 {seg.get(2)} does not match ISA13 {inter.control}")
            closed = True
        elif current is not None:
            current.segments.append(seg)
        else:
            raise ParseError(f"{seg.tag} outside a transaction set", segment=seg.number,
                             offset=seg.offset)
    if current is not None:
        last = current.segments[-1]
        raise ParseError(f"file ends inside transaction set {current.control} (no SE): "
                         "truncated?", segment=last.number + 1, offset=last.offset)
    if not closed:
        inter.warnings.append("no IEA trailer")
    if not inter.sets:
        raise ParseError("interchange holds no transaction set", segment=len(segments))
    return inter


def _check_count(inter: Interchange, ts: TransactionSet, se: Segment) -> None:
    if se.get(2) != ts.control:
        inter.warnings.append(f"SE02 {se.get(2)} does not match ST02 {ts.control}")
    declared = se.get(1)
    if declared.isdigit() and int(declared) != len(ts.segments):
        inter.warnings.append(f"SE01 says {declared} segments, transaction set "
                              f"{ts.control} has {len(ts.segments)}")
