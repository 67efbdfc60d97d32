"""The command line never answers bad arguments with a traceback.

Bad choices are argparse errors (exit 2, the valid choices listed); an unknown team names the
configured ones; a missing config says how to name one; a closed pipe ends the command
quietly; ``explain`` takes the ids ``feed --json`` prints; the feed's times go forward with its
order (commit order, the time each post was made; a late event's own time at the end).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from floorstream.cli import main
from floorstream.model import Post, Severity, event_id, utcnow
from floorstream.store.store import CommitBatch, Store

FLOORSTREAM = str(Path(sys.executable).parent / "floorstream")

CONFIG = """\
store: sqlite:///{db}
default_team: general
teams: {{maintenance: {{}}, quality: {{}}}}
routes:
  - name: presses
    match: {{source: presses}}
    teams: [maintenance]
"""


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "FLOORSTREAM_CONFIG"}
    env.update(extra)
    return env


def _run(*args: str, cwd: Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([FLOORSTREAM, *args], cwd=cwd, capture_output=True, text=True,
                          env=_env(), timeout=60, check=False, **kwargs)  # type: ignore[call-overload]


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("FLOORSTREAM_CONFIG", raising=False)
    path = tmp_path / "floorstream.yaml"
    path.write_text(CONFIG.format(db=tmp_path / "fs.db"), encoding="utf-8")
    return path


def _post(n: int, *, summary: str, late: timedelta = timedelta(0)) -> Post:
    now = utcnow()
    return Post(id=event_id("presses", "press-07", str(n), "machine.state_changed"),
                type="machine.state_changed", source="presses", subject="press-07",
                summary=summary, severity=Severity.WARNING, teams=("maintenance",),
                occurred_at=now - late, created_at=now + timedelta(seconds=n),
                routing=({"team": "maintenance", "rule": "presses"},))


def _commit(config: Path, *posts: Post) -> None:
    store = Store.open(f"sqlite:///{config.parent / 'fs.db'}")
    try:
        store.commit(CommitBatch(posts=list(posts)))
    finally:
        store.close()


@pytest.mark.parametrize("command", ["feed -t maintenance", "explain --source a --type b"])
def test_unknown_severity_is_a_usage_error(command: str, tmp_path: Path) -> None:
    result = _run(*command.split(), "--severity", "urgent", cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "invalid choice: 'urgent'" in result.stderr
    assert "info" in result.stderr and "critical" in result.stderr


@pytest.mark.parametrize("args", [["feed", "-t", "maintenance", "-n", "0"],
                                  ["feed", "-t", "maintenance", "-n", "many"],
                                  ["quarantine", "-n", "-1"],
                                  ["deliveries", "-n", "0"],
                                  ["explain", "--source", "a", "--type", "b",
                                   "--attr", "noequals"]])
def test_bad_values_are_usage_errors(args: list[str], config: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([*args, "-c", str(config)])
    assert exit_.value.code == 2
    assert "error: argument" in capsys.readouterr().err


def test_severity_is_case_insensitive(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _commit(config, _post(1, summary="Press 7 stopped"))
    assert main(["feed", "-c", str(config), "-t", "maintenance", "--severity", "WARNING"]) == 0
    assert "Press 7 stopped" in capsys.readouterr().out


def test_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    """`floorstream plugins | head -2`: the reader is gone before the output is written."""
    read, write = os.pipe()
    os.close(read)  # every write now fails with EPIPE (Python ignores SIGPIPE)
    try:
        result = subprocess.run([FLOORSTREAM, "plugins"], stdout=write, stderr=subprocess.PIPE,
                                cwd=tmp_path, env=_env(), timeout=60, check=False, text=True)
    finally:
        os.close(write)
    assert result.stderr == ""  # no traceback, no "Exception ignored … BrokenPipeError"
    assert result.returncode == 1


def test_closed_pipe_after_part_of_the_output(tmp_path: Path) -> None:
    """The real shape: `head -2` reads two lines, then goes away."""
    result = subprocess.run(f"'{FLOORSTREAM}' plugins | head -2", shell=True, cwd=tmp_path,
                            env=_env(), capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0  # head's
    assert len(result.stdout.splitlines()) == 2
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr


def test_unknown_team_names_the_configured_ones(config: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    _commit(config, _post(1, summary="Press 7 stopped"))
    assert main(["feed", "-c", str(config), "-t", "nosuchteam"]) == 2
    err = capsys.readouterr().err
    assert "unknown team 'nosuchteam'" in err
    assert "configured teams: admin, general, maintenance, quality" in err
    # a configured team without posts yet is no error
    assert main(["feed", "-c", str(config), "-t", "quality"]) == 0
    assert "no posts for team 'quality' yet" in capsys.readouterr().err


def test_unknown_team_with_only_a_store_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("FLOORSTREAM_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)  # no floorstream.yaml here
    config = tmp_path / "elsewhere" / "floorstream.yaml"
    config.parent.mkdir()
    _commit(config, _post(1, summary="Press 7 stopped"))
    url = f"sqlite:///{config.parent / 'fs.db'}"
    assert main(["feed", "--store", url, "-t", "nosuchteam"]) == 2
    assert "teams with posts in the store: maintenance" in capsys.readouterr().err
    assert main(["feed", "--store", url, "-t", "maintenance"]) == 0
    assert "Press 7 stopped" in capsys.readouterr().out


def test_missing_config_says_how_to_name_one(tmp_path: Path) -> None:
    for args in (["feed", "-t", "maintenance"], ["explain", "somepost"], ["check"],
                 ["run", "--for", "1"], ["deliver", "--for", "1"]):
        result = _run(*args, cwd=tmp_path)
        assert result.returncode == 2, (args, result.stderr)
        assert "Traceback" not in result.stderr
        assert result.stderr.strip() == (f"floorstream: no floorstream.yaml in {tmp_path}: "
                                         "pass -c FILE or set FLOORSTREAM_CONFIG"), args
    assert not (tmp_path / "floorstream.db").exists()  # and no store was created
    result = _run("check", "-c", "nope.yaml", cwd=tmp_path)
    assert result.stderr.strip() == ("floorstream: config file nope.yaml not found: "
                                     "pass -c FILE or set FLOORSTREAM_CONFIG")
    result = subprocess.run([FLOORSTREAM, "check"], cwd=tmp_path, capture_output=True,
                            text=True, env=_env(FLOORSTREAM_CONFIG="/nowhere/fs.yaml"),
                            timeout=60, check=False)
    assert result.returncode == 2
    assert "config file /nowhere/fs.yaml (from FLOORSTREAM_CONFIG) not found" in result.stderr


def test_unreachable_store_is_one_line(tmp_path: Path) -> None:
    for store in ("postgresql+psycopg://u@127.0.0.1:1/x", "notaurl"):
        result = _run("feed", "--store", store, "-t", "maintenance", cwd=tmp_path)
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stderr
        assert result.stderr.startswith("floorstream: the store failed: ")
        assert len(result.stderr.strip().splitlines()) == 1


def test_explain_takes_the_ids_the_feed_prints(config: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    post = _post(1, summary="Press 7 stopped")
    _commit(config, post)
    assert main(["feed", "-c", str(config), "-t", "maintenance", "--json"]) == 0
    urn = f"urn:floorstream:post:{post.id}"
    assert f'"id": "{urn}"' in capsys.readouterr().out
    for given in (urn, post.id):
        assert main(["explain", "-c", str(config), given]) == 0
        out = capsys.readouterr().out
        assert out.startswith("Press 7 stopped\n  maintenance: chosen by presses\n"), out
    assert main(["explain", "-c", str(config), "urn:floorstream:post:nosuchpost"]) == 1
    assert "no post with id nosuchpost" in capsys.readouterr().err


def test_feed_times_say_they_are_utc(config: Path, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """On a plant server set to Europe/Berlin the feed's times are UTC and say so, as the
    summaries' own clock times are (they once were UTC without a word: an hour off)."""
    post = _post(1, summary="Press 7 stopped", late=timedelta(days=3))
    _commit(config, post)
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    try:
        assert main(["feed", "-c", str(config), "-t", "maintenance"]) == 0
    finally:
        monkeypatch.undo()
        time.tzset()
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith(post.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC  "))
    assert line.endswith(f"(event {post.occurred_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC)")


def test_feed_times_are_on_the_plants_clock_when_it_has_one(
        config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With ``display.timezone`` the summaries' times are on the plant's clock, so the
    feed's are too, labelled with the zone's abbreviation."""
    config.write_text(config.read_text(encoding="utf-8")
                      + "display: {timezone: America/Chicago}\n", encoding="utf-8")
    post = _post(1, summary="Press 7 stopped", late=timedelta(days=3))
    _commit(config, post)
    assert main(["feed", "-c", str(config), "-t", "maintenance"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    chicago = ZoneInfo("America/Chicago")
    assert line.startswith(post.created_at.astimezone(chicago).strftime("%Y-%m-%d %H:%M:%S %Z  "))
    assert line.endswith(f"(event {post.occurred_at.astimezone(chicago):%Y-%m-%d %H:%M %Z})")


def test_the_admin_team_is_known_before_its_first_post(
        config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["feed", "-c", str(config), "-t", "admin"]) == 0
    assert capsys.readouterr().err.strip() == "no posts for team 'admin' yet"


def test_feed_times_follow_its_order(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Commit order, each line with the time its post was made; a late event (a supply
    message about something days ago) shows its own time at the end instead of first."""
    fresh = _post(1, summary="Press 7 stopped")
    late = _post(2, summary="Container MSCU1234567 discharged", late=timedelta(days=3))
    _commit(config, fresh)
    _commit(config, late)
    assert main(["feed", "-c", str(config), "-t", "maintenance"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("  ")[0] for line in lines] == [
        p.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") for p in (fresh, late)]
    assert "Press 7 stopped" in lines[0] and "(event" not in lines[0]
    assert lines[1].endswith(f"(event {late.occurred_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC)")
