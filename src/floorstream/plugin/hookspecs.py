"""Every hook floorstream calls, in one place.

Builtin adapters, detectors, decoders, sinks, phrases and commands implement these hooks
exactly like third-party plugins do; a third-party package declares
``[project.entry-points.floorstream]`` and marks its functions with
:data:`floorstream.plugin.hookimpl`. An implementation may accept fewer arguments than the spec
names (pluggy's opt-in arguments), so adding an argument here never breaks a plugin.

Two families, with different rules:

- **Registration hooks** (``register_*``) are called once, on the thread that builds the plugin
  manager (the main thread of ``floorstream run``, or the caller of ``floorstream.open``),
  before any source starts. They are called plugin by plugin so every registered name knows
  its plugin; a ``wrapper``/``hookwrapper`` implementation of one is refused at registration
  with a :class:`~floorstream.errors.PluginError`, since there is no result to wrap.
- **Per-post hooks** (``render_post``, ``route_post``, ``post_committed``) are called through
  pluggy on the pipeline thread (or, for a library publish, on the publishing thread while it
  holds the pipeline's lock), so they must be quick and must not block. Wrapper
  implementations work as pluggy documents them. An ordinary implementation that raises is
  logged with its plugin's name and skipped; the others still run and the post is kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from floorstream.plugin.markers import hookspec

if TYPE_CHECKING:
    from floorstream.model import Event, Post
    from floorstream.plugin.adapter import Adapter
    from floorstream.plugin.commands import Commands
    from floorstream.plugin.decoder import Decoder
    from floorstream.plugin.detector import Detector
    from floorstream.plugin.phrasebook import Phrase
    from floorstream.plugin.registry import Registry
    from floorstream.plugin.sink import Sink


@hookspec
def register_adapters(registry: Registry[type[Adapter[Any]]]) -> None:
    """Add adapter classes (subclasses of :class:`floorstream.plugin.Adapter`).

    Registration hook: once, at start-up, before any source runs. Call
    ``registry.add(MyAdapter)``; the name comes from ``MyAdapter.name`` and must be unique
    across all plugins (a second registration is a start-up error naming both plugins).

    :param registry: the adapter registry.
    :return: nothing; results are ignored.
    """


@hookspec
def register_detectors(registry: Registry[type[Detector]]) -> None:
    """Add detector classes (subclasses of :class:`floorstream.plugin.Detector`).

    Registration hook: once, at start-up. A config names a detector in a source's ``detect:``
    list by the detector's ``name``.

    :param registry: the detector registry.
    :return: nothing.
    """


@hookspec
def register_decoders(registry: Registry[type[Decoder]]) -> None:
    """Add payload decoders (subclasses of :class:`floorstream.plugin.Decoder`).

    Registration hook: once, at start-up. Adapters look decoders up by name (``decode: json``)
    in ``context.decoders``.

    :param registry: the decoder registry.
    :return: nothing.
    """


@hookspec
def register_sinks(registry: Registry[type[Sink[Any]]]) -> None:
    """Add delivery sink classes (subclasses of :class:`floorstream.plugin.Sink`).

    Registration hook: once, at start-up. A config's ``sinks:`` entries name a sink by
    ``type``.

    :param registry: the sink registry.
    :return: nothing.
    """


@hookspec
def register_phrases(phrases: Registry[Phrase]) -> None:
    """Add the default wording of the event types a plugin produces.

    Registration hook: once, at start-up. Call ``phrases.add(func, name="shipment.delayed")``
    with a function ``Event → str``; one event type has one default phrase (a second one is a
    start-up error). Default phrases rank *below* everything a user configures: a
    ``render_post`` plugin and the source's ``summary`` template come first, and an explicit
    ``summary`` field of a published event wins too. A phrase that raises ``KeyError``,
    ``TypeError`` or ``ValueError`` (a field it expected is missing) falls back to the generic
    "subject: type (fields…)" line.

    :param phrases: the phrase book, keyed by event type.
    :return: nothing.
    """


@hookspec
def register_commands(commands: Commands) -> None:
    """Add ``floorstream`` subcommands (e.g. ``floorstream erp install-triggers``).

    Registration hook: called once when the command line is parsed, on the main thread. Call
    ``parser = commands.add("erp", help=...)`` and ``parser.set_defaults(func=handler)`` where
    ``handler(args) -> int`` returns the exit code; ``commands.sources(args)`` gives the
    validated sources of the config file named by ``--config``.

    :param commands: where to add subcommands.
    :return: nothing.
    """


@hookspec(firstresult=True)
def render_post(event: Event, default: str) -> str | None:
    """Phrase an event's one-line summary differently from the default.

    Per-post hook, on the pipeline thread, before the commit. Called after the source's
    summary template (if any) was applied; the first implementation that returns a non-None
    value is the result and the remaining ones are not called (``firstresult``). Return None
    to keep ``default``.

    :param event: the event to phrase.
    :param default: the summary floorstream would use.
    :return: the summary (at most 200 characters; longer is cut) or None.
    """


@hookspec
def route_post(post: Post, event: Event) -> Sequence[str] | None:
    """Add teams to a post beyond what the config's routes chose.

    Per-post hook, on the pipeline thread, before the commit. Called after config routing;
    all results are collected and merged.

    :param post: the post as routed so far (``post.teams``).
    :param event: the event it renders.
    :return: team names to add, or None.
    """


@hookspec
def post_committed(posts: Sequence[Post]) -> None:
    """Observe posts right after they were committed to the store.

    Per-batch hook, *after* the commit: on the pipeline thread for the daemon's batches, and
    on the publishing thread for ``Stream.publish`` — both take the same pipeline, so a
    plugin sees every post exactly once, whichever way it was made. Only new posts are
    passed (replays of already committed posts are not). Slow work must be handed to
    another thread.

    :param posts: the posts of the batch, in commit order.
    :return: nothing.
    """
