"""Every hook floorstream calls, in one place.

Builtin adapters, detectors, decoders and sinks implement these hooks exactly like third-party
plugins do; a third-party package declares ``[project.entry-points.floorstream]`` and marks its
functions with :data:`floorstream.hookimpl`. An implementation may accept fewer arguments than
the spec names (pluggy's opt-in arguments), so adding an argument here never breaks a plugin.

Registration hooks are called once, when the plugin manager is built. The other hooks are called
on the pipeline thread for every event or batch, so they must be quick and must not block.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from floorstream._markers import hookspec

if TYPE_CHECKING:
    from floorstream.model import Event, Post
    from floorstream.registry import Registry


@hookspec
def register_adapters(registry: Registry[Any]) -> None:
    """Add adapter classes (subclasses of :class:`floorstream.adapters.base.Adapter`).

    Called once at start-up, for every plugin. Call ``registry.add(MyAdapter)``; the name comes
    from ``MyAdapter.name`` and must be unique across all plugins.

    :param registry: the adapter registry.
    :return: nothing; results are collected and ignored.
    """


@hookspec
def register_detectors(registry: Registry[Any]) -> None:
    """Add detector classes (subclasses of :class:`floorstream.detectors.base.Detector`).

    Called once at start-up. A config names a detector in a source's ``detect:`` list by the
    detector's ``name``.

    :param registry: the detector registry.
    :return: nothing.
    """


@hookspec
def register_decoders(registry: Registry[Any]) -> None:
    """Add payload decoders (subclasses of :class:`floorstream.decoders.Decoder`).

    Called once at start-up. Adapters look decoders up by name (``decode: json``).

    :param registry: the decoder registry.
    :return: nothing.
    """


@hookspec
def register_sinks(registry: Registry[Any]) -> None:
    """Add delivery sink classes (subclasses of :class:`floorstream.sinks.base.Sink`).

    Called once at start-up. A config's ``sinks:`` entries name a sink by ``type``.

    :param registry: the sink registry.
    :return: nothing.
    """


@hookspec(firstresult=True)
def render_post(event: Event, default: str) -> str | None:
    """Phrase an event's one-line summary differently from the default.

    Called for every event after the config's summary template (if any) was applied; stops at
    the first plugin that returns a string. Return None to keep ``default``.

    :param event: the event to phrase.
    :param default: the summary floorstream would use.
    :return: the summary (at most 200 characters; longer is cut) or None.
    """


@hookspec
def route_post(post: Post, event: Event) -> Sequence[str] | None:
    """Add teams to a post beyond what the config's routes chose.

    Called for every post after config routing; all results are collected and merged.

    :param post: the post as routed so far (``post.teams``).
    :param event: the event it renders.
    :return: team names to add, or None.
    """


@hookspec
def post_committed(posts: Sequence[Post]) -> None:
    """Observe posts right after they were committed to the store.

    Called on the pipeline thread once per committed batch (only new posts, replays excluded).
    Useful for embedding (push to a UI); slow work must be handed to another thread.

    :param posts: the posts of the batch, in commit order.
    :return: nothing.
    """
