"""The pages as their readers use them: a shift lead on a phone, a maintenance tech at a desk,
a shop-floor screen across the room; keyboard only; the live stream dropped and back; error
pages; follow and unfollow; the Atom feed's structure (RFC 4287).

One ``floorstream web -c FILE`` process (restarted once, on the same port, to drop the live
stream) against a SQLite store the test publishes to; Debian's headless Chromium.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest

import floorstream
from floorstream.web.views import atom_feed
from support import FLOORSTREAM

from .test_web_browser import browser, log_in, screenshot  # the browser fixture, shared
from .websupport import web_mapping

__all__ = ["browser"]

ATOM = "{http://www.w3.org/2005/Atom}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class WebProcess:
    """``floorstream web`` on a fixed port: stopped (by its PID) and started again."""

    def __init__(self, config: Path, port: int) -> None:
        self.config, self.port = config, port
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [FLOORSTREAM, "web", "-c", str(self.config), "--port", str(self.port)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert self.process.stdout is not None
        seen = []
        for line in self.process.stdout:
            seen.append(line)
            if "floorstream web: serving " in line:
                return
        raise AssertionError(f"floorstream web did not start: {''.join(seen)}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            assert self.process.wait(20) == 0
            self.process = None


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[WebProcess, Any]]:
    mapping = web_mapping(f"sqlite:///{tmp_path}/fs.db", public_teams=["maintenance"])
    mapping["display"] = {"timezone": "Europe/Berlin"}  # the plant's clock
    path = tmp_path / "floorstream.yaml"
    path.write_text(json.dumps(mapping), encoding="utf-8")
    with floorstream.open(str(path)) as stream:
        web = WebProcess(path, free_port())
        web.start()
        try:
            yield web, stream
        finally:
            web.stop()


def publish(stream: Any, subject: str, summary: str, severity: str = "warning",
            source: str = "presses", **extra: Any) -> Any:
    post = stream.publish(source=source, subject=subject, type="machine.state_changed",
                          summary=summary, severity=severity, key=summary, **extra)
    assert post is not None
    return post


def test_kiosk_reads_from_across_the_room_and_scrolls_through(
        browser: Any, site: tuple[WebProcess, Any], tmp_path: Path) -> None:
    web, stream = site
    for n in range(14):  # a little more than a 1080-line screen holds
        publish(stream, f"press-{n:02d}", f"press-{n:02d} stopped (was running)",
                severity="critical" if n % 3 == 0 else "warning")
    # the screen's own zone is not the plant's: the page shows the plant's clock all the same
    context = browser.new_context(viewport={"width": 1920, "height": 1080},
                                  timezone_id="America/Chicago")
    try:
        kiosk = context.new_page()
        failed: list[str] = []
        kiosk.on("response", lambda r: failed.append(f"{r.status} {r.url}")
                 if r.status >= 400 else None)
        kiosk.goto(f"{web.url}/kiosk/maintenance?rest=1")  # public: no login
        kiosk.wait_for_selector("body[data-live=open]", timeout=20_000)
        assert failed == []  # not even a favicon's 404 in a screen's log every reload
        first = kiosk.locator("article.post").first
        summary_px = float(first.locator(".summary").evaluate(
            "e => parseFloat(getComputedStyle(e).fontSize)"))
        meta_px = float(first.locator(".meta").evaluate(
            "e => parseFloat(getComputedStyle(e).fontSize)"))
        # the summary is the biggest text on the card, big enough to read at a few metres
        assert summary_px >= 36 and summary_px > meta_px, (summary_px, meta_px)
        # severity in words and a mark, not colour alone; the time on the plant's clock, named
        assert first.locator(".sev").inner_text().strip().endswith("CRITICAL") or \
            first.locator(".sev").inner_text().strip().endswith("WARNING")
        assert first.locator("time").inner_text().endswith(("CET", "CEST"))
        assert kiosk.locator("#clock").inner_text().endswith(("CET", "CEST"))
        # nothing to press on a wall screen
        assert not first.locator(".actions").is_visible()
        screenshot(kiosk, "web-kiosk.png", tmp_path)  # docs/web.md's (UPDATE_SCREENSHOTS=1)
        # it glides down through what does not fit, rests at the bottom, and goes back up
        kiosk.wait_for_function("() => window.scrollY > 0", timeout=20_000)
        kiosk.wait_for_selector("body[data-scrolled=bottom]", timeout=60_000)
        kiosk.wait_for_function("() => window.scrollY === 0", timeout=20_000)
        # a new post comes in at the top, live
        fresh = publish(stream, "oven-2", "oven-2 in fault (was running)", "critical")
        kiosk.wait_for_selector(f"#post-{fresh.id}", timeout=15_000)
        assert kiosk.locator("article.post").first.get_attribute("id") == f"post-{fresh.id}"
    finally:
        context.close()


def test_live_resumes_after_the_server_went_away(
        browser: Any, site: tuple[WebProcess, Any]) -> None:
    web, stream = site
    publish(stream, "press-07", "press-07 stopped (was running)")
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        phone = log_in(context, web.url, "alice")
        phone.goto(f"{web.url}/teams/maintenance")
        phone.wait_for_selector("body[data-live=open]", timeout=20_000)
        seen = publish(stream, "press-07", "press-07 running again after 2 min", "info")
        phone.wait_for_selector(f"#post-{seen.id}", timeout=15_000)
        web.stop()
        # the reader is told the page is not live any more
        phone.wait_for_selector("#live-state:has-text('Not live since')", timeout=20_000)
        missed = publish(stream, "press-08", "press-08 stopped while the feed was down")
        web.start()
        phone.wait_for_selector(f"#post-{missed.id}", timeout=40_000)
        phone.wait_for_selector("#live-state", state="hidden", timeout=10_000)
        # announced to a screen reader in one line
        assert "press-08 stopped while the feed was down" in phone.locator(
            "#announce").inner_text()
        assert phone.locator(f"#post-{seen.id}").count() == 1  # nothing twice
    finally:
        context.close()


def test_keyboard_follow_errors_and_empty_states(
        browser: Any, site: tuple[WebProcess, Any]) -> None:
    web, stream = site
    post = publish(stream, "press-07", "press-07 in fault (was running)", "critical")
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    try:
        page = log_in(context, web.url, "alice")
        page.goto(f"{web.url}/teams/maintenance")
        assert page.locator("html").get_attribute("lang") == "en"
        assert page.locator("h1").count() == 1
        # keyboard only: the first Tab offers to skip the menu, then "on it" is reachable
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.className") == "skip"
        page.keyboard.press("Enter")
        button = page.locator(f"#post-{post.id} .ack-form button")
        for _ in range(40):
            page.keyboard.press("Tab")
            if button.evaluate("b => b === document.activeElement"):
                break
        else:
            raise AssertionError("Tab never reached the post's 'on it' button")
        page.keyboard.press("Enter")
        page.wait_for_selector(f"#post-{post.id} .ack:has-text('Alice on it')")
        # the "on it" post in the thread offers nothing to be on or to answer
        page.wait_for_selector("article.acknowledgement")
        assert page.locator("article.acknowledgement .actions").count() == 0
        # every form field has a name a screen reader can say
        page.goto(f"{web.url}/teams/maintenance")
        unnamed = page.evaluate("""() => [...document.querySelectorAll(
            'input:not([type=hidden]), select, textarea')].filter(e => !e.labels?.length
            && !e.getAttribute('aria-label')).map(e => e.name)""")
        assert unnamed == []

        # follow: the button says it is on, and the personal feed can undo it
        page.click("form.follow-form button:has-text('follow maintenance')")
        on = page.locator("form.follow-form button[aria-pressed=true]")
        assert "following" in on.inner_text()
        page.goto(f"{web.url}/me")
        page.wait_for_selector(f"#post-{post.id}")
        page.click("ul.follows button[aria-label='unfollow team maintenance']")
        page.wait_for_selector("#empty:has-text('Follow a team')")

        # the time filter is typed on the plant's clock and sent as UTC (CET is UTC+1); the
        # blank fields are no filter (they were a 422 in JSON: a browser sends until=)
        assert httpx.get(f"{web.url}/teams/maintenance?severity=&since=&until=&q=",
                         headers={"accept": "text/html"}, timeout=10).status_code == 200
        page.goto(f"{web.url}/teams/maintenance")
        page.click("details.more-filters summary")  # one click away; open when one is set
        page.fill("input[name=since]", "2026-01-15T10:30")
        page.click("form.filters button")
        page.wait_for_url(f"{web.url}/teams/maintenance?since=2026-01-15T09%3A30%3A00.000Z")
        assert page.locator("input[name=since]").is_visible()
        assert page.locator("input[name=since]").input_value() == "2026-01-15T10:30"
        assert page.locator("form.filters abbr.zone").inner_text() == "CET"

        # a source is followed from the feed filtered by it
        page.goto(f"{web.url}/?source=presses")
        page.click("form.follow-form button:has-text('follow source presses')")
        page.wait_for_selector("form.follow-form button[aria-pressed=true]:has-text('presses')")

        # an empty search says why and how to get back
        page.goto(f"{web.url}/teams/maintenance?q=nothing-like-this")
        page.wait_for_selector("#empty:has-text('No posts match these filters')")
        page.click("#empty a:has-text('Clear the filters')")
        page.wait_for_selector(f"#post-{post.id}")

        # a form older than the session: the page says what to do, not "CSRF"
        page.goto(f"{web.url}/teams/maintenance")
        page.evaluate("document.querySelectorAll('input[name=csrf]').forEach("
                      "i => i.value = 'stale')")
        page.click(f"#post-{post.id} .ack-form button")
        page.wait_for_selector("h1:has-text('Not for you')")
        assert "reload the page" in page.locator("main").inner_text()

        # a hand-edited filter gets a page saying which value, not JSON
        bad = page.goto(f"{web.url}/teams/maintenance?since=yesterday")
        assert bad is not None and bad.status == 422
        assert page.locator("h1").inner_text().startswith("That did not work")
        assert "since" in page.locator("main").inner_text()

        # a mistyped address gets a page, not JSON
        missing = page.goto(f"{web.url}/no/such/page")
        assert missing is not None and missing.status == 404
        assert page.locator("h1").inner_text().startswith("Not found")

        # bob reads production (and the public maintenance) only: purchasing is refused in words
        bob = log_in(browser.new_context(), web.url, "bob")
        refused = bob.goto(f"{web.url}/teams/purchasing")
        assert refused is not None and refused.status == 403
        assert "team you are not in" in bob.locator("main").inner_text()
        bob.context.close()

        # an expired (or forged) session: to the login page, then back where it was
        context.clear_cookies()
        context.add_cookies([{"name": "fs_session", "value": "expired", "url": web.url}])
        page.goto(f"{web.url}/teams/production")
        page.wait_for_selector("form.login")
    finally:
        context.close()


def test_atom_feed_follows_rfc_4287(site: tuple[WebProcess, Any]) -> None:
    web, stream = site
    published = publish(stream, "press-07", "press-07 stopped <b>hard</b>", severity="critical")
    answer = httpx.get(f"{web.url}/teams/maintenance/atom.xml", timeout=10)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/atom+xml")
    feed = ElementTree.fromstring(answer.content)
    assert feed.tag == f"{ATOM}feed"
    for required in ("id", "title", "updated"):
        assert len(feed.findall(f"{ATOM}{required}")) == 1, required
    assert feed.find(f"{ATOM}link[@rel='self']") is not None
    entries = feed.findall(f"{ATOM}entry")
    assert entries
    for entry in entries:
        for required in ("id", "title", "updated"):
            assert len(entry.findall(f"{ATOM}{required}")) == 1, required
        # the feed has no author of its own, so each entry must have one
        assert entry.find(f"{ATOM}author/{ATOM}name") is not None
        assert entry.find(f"{ATOM}link[@rel='alternate']") is not None
        assert " " not in (entry.findtext(f"{ATOM}id") or " ")
    texts = [e.findtext(f"{ATOM}title") for e in entries]
    assert f"[critical] {published.summary}" in texts  # the markup as text, escaped
    # a team name with a space still makes an IRI of the feed's id
    spaced = ElementTree.fromstring(atom_feed("quality control", [], base=web.url,
                                              updated=published.created_at))
    assert spaced.findtext(f"{ATOM}id") == "urn:floorstream:team:quality%20control"
