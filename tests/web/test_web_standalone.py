"""``floorstream web -c FILE`` alone, next to a daemon on the same store: it serves the feed,
and a comment made there is routed and put in the outbox by its own pipeline and delivered by
the daemon's workers to the chat."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import httpx

from floorstream.config import parse_mapping
from floorstream.plugins import build_plugins
from support import FLOORSTREAM, DaemonRunner, http_receiver, wait_for

from .websupport import TOKEN, web_mapping


def test_web_alone_next_to_the_daemon(tmp_path: Path) -> None:
    with http_receiver() as chat:
        mapping = web_mapping(f"sqlite:///{tmp_path}/fs.db")
        mapping["teams"]["maintenance"] = {"sinks": ["chat"]}
        mapping["sinks"] = [{"name": "chat", "type": "webhook", "url": chat.url}]
        path = tmp_path / "floorstream.yaml"
        path.write_text(json.dumps(mapping), encoding="utf-8")
        with DaemonRunner(parse_mapping(mapping, build_plugins())) as runner:
            runner.start()
            assert runner.daemon is not None and runner.daemon.web is None  # no web.port
            post = runner.daemon.stream().publish(
                source="presses", subject="press-07", type="machine.state_changed",
                summary="press-07 in fault", severity="critical", key="1")
            assert post is not None
            web = subprocess.Popen([FLOORSTREAM, "web", "-c", str(path), "--port", "0"],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            try:
                assert web.stdout is not None
                lines = []
                for line in web.stdout:
                    lines.append(line)
                    if "floorstream web: serving " in line:
                        break
                url = lines[-1].rsplit(" ", 1)[-1].strip().rstrip("/")
                assert url.startswith("http://127.0.0.1:"), lines
                auth = {"authorization": f"Bearer {TOKEN}"}
                feed = httpx.get(f"{url}/api/feed?team=maintenance", headers=auth).json()
                assert [a["summary"] for a in feed["orderedItems"]] == ["press-07 in fault"]
                answer = httpx.post(f"{url}/api/posts/{post.id}/comments", headers=auth,
                                    json={"text": "belt ordered", "key": "c1"})
                assert answer.status_code == 201, answer.text
                delivered = wait_for(lambda: [r.json for r in chat.ok()
                                              if "belt ordered" in r.body.decode()], 20,
                                     "the comment at the chat")
                assert delivered[0]["inReplyTo"] == f"urn:floorstream:post:{post.id}"
                assert delivered[0]["actor"] == {"type": "Person", "name": "Alice",
                                                 "id": "urn:floorstream:person:alice"}
            finally:
                web.send_signal(signal.SIGTERM)
                assert web.wait(20) == 0
