"""UN/EDIFACT tokenizer: UNA service string advice, release character, UNB/UNH envelopes.

pydifact (MIT) tokenizes EDIFACT well but says of itself "work in progress, the API is not
stable yet", has no DESADV/IFTSTA schema either, and does not report where in the file a
failure happened; the syntax itself is a page long, so we keep our own tokenizer and report
segment numbers and offsets in every error. Control references that disagree (UNB ≠ UNZ, as in
the real IFTSTA sample; UNH ≠ UNT) are warnings, not failures.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from floorstream.adapters.supply.formats.errors import ParseError
from floorstream.adapters.supply.formats.text import decode

__all__ = ["EdiSegment", "Message", "tokenize"]

_DEFAULT = ":+.? '"  # component, element, decimal, release, reserved, terminator


@dataclass(frozen=True, slots=True)
class EdiSegment:
    tag: str
    elements: tuple[tuple[str, ...], ...]  # elements[0] = (tag,); each a tuple of components
    number: int
    offset: int

    def get(self, element: int, component: int = 0, default: str = "") -> str:
        try:
            return self.elements[element][component].strip() or default
        except IndexError:
            return default


@dataclass(slots=True)
class Message:
    type: str  # DESADV, IFTSTA
    reference: str  # UNH 0062
    segments: list[EdiSegment] = field(default_factory=list)


@dataclass(slots=True)
class EdiInterchange:
    sender: str
    reference: str
    messages: list[Message] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def tokenize(raw: bytes) -> EdiInterchange:
    text = decode(raw).lstrip("\ufeff \r\n\t")
    chars = _DEFAULT
    start = 0
    if text.startswith("UNA"):
        if len(text) < 9:
            raise ParseError("UNA service string advice cut short", segment=1, offset=0)
        chars, start = text[3:9], 9
    if not text[start:].lstrip("\r\n").startswith(("UNB", "UNH")):
        raise ParseError("not an EDIFACT interchange: no UNB or UNH", segment=1, offset=start)
    segments = _split(text, start, chars)
    return _envelope(segments)


def _split(text: str, start: int, chars: str) -> list[EdiSegment]:
    comp, elem, release, term = chars[0], chars[1], chars[3], chars[5]
    segments: list[EdiSegment] = []
    elements: list[tuple[str, ...]] = []
    components: list[str] = []
    buf: list[str] = []
    seg_start = start
    i, n = start, len(text)
    while i < n:
        ch = text[i]
        if ch == release and release != " ":
            i += 1
            if i < n:
                buf.append(text[i])
        elif ch == comp:
            components.append("".join(buf))
            buf.clear()
        elif ch == elem:
            components.append("".join(buf))
            elements.append(tuple(components))
            components, buf = [], []
        elif ch == term:
            components.append("".join(buf))
            elements.append(tuple(components))
            tag = elements[0][0].strip()
            if not (len(tag) == 3 and tag.isalnum() and tag.isupper()):
                raise ParseError(f"bad segment tag {tag[:12]!r}", segment=len(segments) + 1,
                                 offset=seg_start)
            elements[0] = (tag,)
            segments.append(EdiSegment(tag, tuple(elements), len(segments) + 1, seg_start))
            elements, components, buf = [], [], []
            i += 1
            while i < n and text[i] in "\r\n":
                i += 1
            seg_start = i
            continue
        elif not (ch in "\r\n" and not buf and not components and not elements):
            buf.append(ch)
        i += 1
    if "".join(buf).strip() or elements or components:
        raise ParseError("file ends inside a segment (no terminator): truncated?",
                         segment=len(segments) + 1, offset=seg_start)
    return segments


def _envelope(segments: list[EdiSegment]) -> EdiInterchange:
    first = segments[0]
    if first.tag == "UNB":
        inter = EdiInterchange(sender=f"{first.get(2, 0)}:{first.get(2, 1)}",
                               reference=first.get(5))
    else:
        inter = EdiInterchange(sender="?", reference="")
        inter.warnings.append("no UNB envelope")
    current: Message | None = None
    closed = first.tag != "UNB"
    for seg in segments[1:] if first.tag == "UNB" else segments:
        if seg.tag == "UNH":
            if current is not None:
                raise ParseError(f"UNH {seg.get(1)} opens before UNT closed {current.reference}",
                                 segment=seg.number, offset=seg.offset)
            current = Message(seg.get(2, 0), seg.get(1), [seg])
        elif seg.tag == "UNT":
            if current is None:
                raise ParseError("UNT without UNH", segment=seg.number, offset=seg.offset)
            current.segments.append(seg)
            if seg.get(2) != current.reference:
                inter.warnings.append(f"UNT reference {seg.get(2)} does not match UNH "
                                      f"{current.reference}")
            count = seg.get(1)
            if count.isdigit() and int(count) != len(current.segments):
                inter.warnings.append(f"UNT says {count} segments, message "
                                      f"{current.reference} has {len(current.segments)}")
            inter.messages.append(current)
            current = None
        elif seg.tag == "UNZ":
            if seg.get(2) != inter.reference:
                inter.warnings.append(f"UNZ reference {seg.get(2)} does not match UNB "
                                      f"reference {inter.reference}")
            closed = True
        elif seg.tag in ("UNG", "UNE"):
            continue
        elif current is not None:
            current.segments.append(seg)
        else:
            raise ParseError(f"{seg.tag} outside a message", segment=seg.number,
                             offset=seg.offset)
    if current is not None:
        last = current.segments[-1]
        raise ParseError(f"file ends inside message {current.reference} (no UNT): truncated?",
                         segment=last.number + 1, offset=last.offset)
    if not closed:
        inter.warnings.append("no UNZ trailer")
    if not inter.messages:
        raise ParseError("interchange holds no message", segment=len(segments))
    return inter
