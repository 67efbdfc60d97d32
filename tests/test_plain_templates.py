"""Plain summary templates (floorstream.plaintemplate) against Jinja2's sandbox.

The plain path exists so that a daemon whose templates only put fields into text need not
import Jinja2 (~1.9 MB of RSS, issue 16); it must give what Jinja2 gives. Hypothesis builds
templates from the plain subset and from near misses (dict method names, whitespace
control, unknown filters, blocks) and contexts with every kind of value, and compares: the
plain path alone either gives Jinja2's output or leaves the context to Jinja2 (raises), and
what interest.template_fields reads is what its walk of the Jinja2 tree reads.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import timeit
from collections import OrderedDict
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import jinja2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markupsafe import Markup

from floorstream.config.checks import template_problem
from floorstream.interest import _walk, template_fields
from floorstream.model import Event
from floorstream.plaintemplate import PlainTemplate, compile_template, parse
from floorstream.render import Renderer, default_summary, template_environment

ENV = template_environment()
ROOT = Path(__file__).resolve().parent.parent

PEERS = ("{{ fields.before }}->{{ fields.after }}",
         "spindle temp {{ '%.1f' | format(fields.value) }} C over limit 85 C",
         "spindle temp {{ '%.1f' | format(fields.value) }} C back under limit 85 C")


class Shout(str):
    def __str__(self) -> str:
        return self.upper()


class Odd:
    def __str__(self) -> str:
        return "odd!"


class Broken:
    def __str__(self) -> str:
        raise ValueError("no words")


#: names and keys that stay plain, then near misses (dict attributes, "_", keywords)
GOOD = ["a", "b", "value", "after", "before", "x1", "e1", "if", "in", "true", "none", "None"]
NAMES = [*GOOD, "items", "get", "keys", "values", "pop", "update", "copy", "and", "not",
         "is", "_x", "__class__", "__len__", "format", "else", "Temp"]
KEYS = [*GOOD, "a b", "é", "🙂", "x'y", 'x"y', "", "Motor/Speed", "]", "}", "__x", "_x",
        "items", "get", "copy"]
ROOTS = ["fields", "subject", "source", "type", "severity", "attrs", "change", "row",
         "before", "default", "event", "nope", "range", "fieldsx"]
FILTERS = ["duration", "number", "value", "quantity", "clock", "upper", "format", "default",
           "nope"]
FORMATS = ["%s", "%.1f", "%d", "%s %s", "%(a)s", "%%", "%", "abc", "{x}", "%r", "%5.2f C",
           "é %s", "a}}b", "%s\\n"]
SPACE = st.sampled_from(["", " ", "  ", "\t", "\n", " \n "])

_keys = st.one_of(st.sampled_from(GOOD), st.sampled_from(GOOD), st.sampled_from(KEYS))
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
    st.decimals(allow_nan=False, places=3, min_value=-1000, max_value=1000),
    st.just(datetime(2026, 12, 1, 10, 15, tzinfo=UTC)), st.just(datetime(2026, 1, 2, 3, 4)),
    st.text(max_size=8), st.builds(Shout, st.text(max_size=5)),
    st.builds(Markup, st.text(max_size=5)), st.just(Odd()), st.just(Broken()),
    st.just((1, 2)), st.just([1, "x"]), st.just(b"raw"), st.just("2026-12-01T10:15:00+00:00"))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.dictionaries(_keys, inner, max_size=4),
        st.dictionaries(_keys, inner, max_size=2).map(OrderedDict)),
    max_leaves=8)
payloads = st.dictionaries(_keys, values, max_size=6)


def _mostly(good: list[str], bad: list[str]) -> st.SearchStrategy[str]:
    """Mostly ``good`` (plain), now and then a near miss."""
    return st.integers(0, 9).flatmap(
        lambda roll: st.sampled_from(bad if roll == 9 else good))


@st.composite
def chains(draw: st.DrawFn) -> str:
    text = draw(_mostly([*ROOTS[:10], "fields", "fields", "row", "before"], ROOTS[10:]))
    for _ in range(draw(st.integers(0, 3))):
        if draw(st.booleans()):
            text += "." + draw(_mostly(GOOD, NAMES))
        else:
            key = draw(_mostly(GOOD, KEYS))
            quote = draw(st.sampled_from(["'", '"']))
            text += f"[{quote}{key}{quote}]"
    return text


@st.composite
def filtered(draw: st.DrawFn) -> str:
    text = draw(chains())
    for _ in range(draw(st.integers(0, 2) if draw(st.integers(0, 3)) == 0 else st.just(0))):
        text += draw(SPACE) + "|" + draw(SPACE) + draw(_mostly(FILTERS[:5], FILTERS[5:]))
    return text


@st.composite
def expressions(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 2)) == 0:
        fmt = draw(st.sampled_from(FORMATS))
        quote = draw(st.sampled_from(["'", '"']))
        args = [draw(filtered()) for _ in range(draw(st.integers(1, 2)))]
        sep = draw(SPACE) + "," + draw(SPACE)
        inner = (f"{quote}{fmt}{quote}{draw(SPACE)}|{draw(SPACE)}format{draw(SPACE)}("
                 f"{draw(SPACE)}{sep.join(args)}{draw(SPACE)})")
    else:
        inner = draw(filtered())
    opening = draw(_mostly(["{{"], ["{{-", "{{+", "{{{"]))
    closing = draw(_mostly(["}}"], ["-}}", "}}}", "}"]))
    return opening + draw(SPACE) + inner + draw(SPACE) + closing


literals = st.text(alphabet=_mostly(list("ab -%#>\u2028é🙂"), list("\n{}\r")), max_size=6)
templates = st.lists(st.one_of(literals, expressions(), expressions(), st.sampled_from(
    ["{% if fields %}x{% endif %}", "{# note #}", "\n", "{{ event.type }}"])),
    min_size=1, max_size=4).map("".join)


def _context(fields: dict[str, Any], data: dict[str, Any], before: Any) -> dict[str, Any]:
    return {"fields": fields, "subject": "press-1", "source": "storm",
            "type": "machine.state_changed", "severity": "warning", "attrs": {"site": "a"},
            "change": fields, "row": data, "before": before, "default": "press-1: default"}


def _outcome(render: Any, context: dict[str, Any]) -> tuple[str, str]:
    try:
        return "ok", render(context)
    except Exception as exc:  # both paths' exceptions count only as "failed"
        return "failed", type(exc).__name__


@settings(max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=templates, fields=payloads, data=payloads, before=st.one_of(payloads, values))
def test_the_plain_path_gives_jinja2s_output(text: str, fields: dict[str, Any],
                                              data: dict[str, Any], before: Any) -> None:
    parsed = parse(text)
    if parsed is None:
        return
    jinja = ENV.from_string(text)  # every plain template compiles, filters known
    assert template_problem(lambda: ENV, text) is None
    context = _context(fields, data, before)
    expected = _outcome(jinja.render, context)
    plain = compile_template(text, lambda: ENV)
    assert isinstance(plain, PlainTemplate)
    alone = _outcome(plain.render_plain, context)
    if alone[0] == "ok":  # else the plain path leaves this context to Jinja2
        assert alone == expected, (text, context)
    assert _outcome(plain.render, context) == expected
    found: set[str] = set()
    walked = frozenset(found) if _walk(jinja2.Environment().parse(text), None, found) else None
    assert template_fields(text) == walked == parsed.fields()


@pytest.mark.parametrize(("text", "expected"), [
    ("{{ fields.before }}->{{ fields.after }}", "idle->running"),
    ("spindle temp {{ '%.1f' | format(fields.value) }} C", "spindle temp 87.2 C"),
    ("{{fields.value}}|{{ fields.missing }}|{{ fields.missing.deeper['x'] }}.", "87.25||."),
    ("{{ fields['a b'] }} {{ fields.nested.inner }}\n", "1 2"),
    ("{{ fields.none }} {{ fields.flag }} {{ fields.when }}", "None True 2026-12-01 10:15:00"),
    ("{{ fields.value | number }} {{ '%s/%s' | format(subject, fields.after) }}",
     "87.25 press-1/running"),
    ("{{ default }}", "press-1: default"),
])
def test_plain_cases(text: str, expected: str) -> None:
    context = _context({"before": "idle", "after": "running", "value": 87.25, "a b": 1,
                        "nested": {"inner": 2}, "none": None, "flag": True,
                        "when": datetime(2026, 12, 1, 10, 15)}, {}, {})
    plain = compile_template(text, lambda: ENV)
    assert isinstance(plain, PlainTemplate)
    assert plain.render_plain(context) == expected == ENV.from_string(text).render(context)


@pytest.mark.parametrize("text", [
    "{{ fields.items }}", "{{ fields.get }}", "{{ fields['values'] }}", "{{ fields._x }}",
    "{{ fields['__x'] }}", "{{ event.type }}", "{{ fields.x | upper }}", "{{- fields.x }}",
    "{{ fields.x -}}", "{% if x %}{% endif %}", "{# c #}", "{{ fields . x }}", "a\r\nb",
    "{{ fields.x | format('y') }}", "{{ 'a\\n' | format(fields.x) }}", "{{ nope }}",
    "{{ fields.x", "{{ fields[0] }}", "{{ fields.x(1) }}", "{{ 'a' | format() }}",
])
def test_not_plain(text: str) -> None:
    assert parse(text) is None


def test_a_lookup_on_a_value_that_is_not_a_dict_is_jinja2s() -> None:
    plain = compile_template("{{ fields.x.upper }} {{ '%d' | format(fields.x) }}", lambda: ENV)
    assert isinstance(plain, PlainTemplate)
    context = _context({"x": "abc"}, {}, {})
    with pytest.raises(Exception):  # noqa: B017 - what the plain path leaves to Jinja2
        plain.render_plain(context)
    with pytest.raises(TypeError):  # '%d' % 'abc': the Renderer logs it and uses the default
        plain.render(context)


def _event(**fields: Any) -> Event:
    return Event.create(source="storm", subject="press-1", type="machine.state_changed",
                        position="1", occurred_at=datetime(2026, 12, 1, 10, 15, tzinfo=UTC),
                        fields=fields)


def test_plain_renders_no_slower_than_jinja2() -> None:
    event = _event(before="idle", after="running", value=87.25)
    context = {"fields": event.fields, "subject": event.subject, "default": "d"}
    for text in PEERS:
        plain = compile_template(text, lambda: ENV)
        jinja = ENV.from_string(text)
        assert plain.render(context) == jinja.render(context)
        plain_s = min(timeit.repeat(partial(plain.render, context), number=2000, repeat=3))
        jinja_s = min(timeit.repeat(partial(jinja.render, context), number=2000, repeat=3))
        assert plain_s < jinja_s, (text, plain_s, jinja_s)


def _child(code: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=120, check=False, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_the_peers_templates_do_not_import_jinja2(tmp_path: Path) -> None:
    result = _child(f"""
        import json, os, sys
        from datetime import UTC, datetime
        sys.path.insert(0, "bench")
        import peers_sut
        from floorstream.config import parse_config
        from floorstream.interest import source_interest
        from floorstream.model import Event
        from floorstream.plugins import build_plugins
        from floorstream.render import Renderer
        plugins = build_plugins()
        config = parse_config(peers_sut.CONFIG.format(db={str(tmp_path / "fs.db")!r},
            port=1883, qos=0, pid=os.getpid(), temp=peers_sut.TEMP), plugins)
        source = config.sources[0]
        renderer = Renderer({{source.name: source.summary}})
        now = datetime.now(UTC)
        interest = source_interest([], source.summary, False)
        lines = [renderer.summary(Event.create(source="storm", subject="press-1", type=t,
                                               position="1", occurred_at=now, fields={{
                                                   "before": "idle", "after": "run",
                                                   "value": 87.25}}))
                 for t in ("machine.state_changed", "metric.limit_exceeded")]
        print(json.dumps({{"jinja2": "jinja2" in sys.modules, "lines": lines,
                          "fields": sorted(interest.fields or ())}}))
    """)
    assert result == {"jinja2": False, "fields": [],
                      "lines": ["idle->run", "spindle temp 87.2 C over limit 85 C"]}


def test_a_template_that_is_not_plain_still_works_with_jinja2() -> None:
    result = _child("""
        import json, sys
        from datetime import UTC, datetime
        from floorstream.model import Event
        from floorstream.render import Renderer
        renderer = Renderer({"storm": "{{ fields.after | upper }}{% if fields.x %}!{% endif %}"})
        line = renderer.summary(Event.create(source="storm", subject="press-1",
                                             type="machine.state_changed", position="1",
                                             occurred_at=datetime.now(UTC),
                                             fields={"after": "run", "x": 1}))
        print(json.dumps({"jinja2": "jinja2" in sys.modules, "line": line}))
    """)
    assert result == {"jinja2": True, "line": "RUN!"}


def test_the_renderer_falls_back_per_event() -> None:
    renderer = Renderer({"storm": "{{ '%.1f' | format(fields.value) }} C"})
    assert renderer.summary(_event(value=87.25)) == "87.2 C"
    hot = _event(value="hot")
    assert renderer.summary(hot) == default_summary(hot)  # template_failed: the default
    assert renderer.summary(_event(value=Decimal("1.25"))) == "1.2 C"
