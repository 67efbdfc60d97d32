"""``class MyAdapter(Adapter[MyConfig])`` → ``MyAdapter.config_model is MyConfig``.

Shared by the adapter and sink contracts, which are both generic in their config model so a
plugin neither repeats the model as a class attribute nor checks ``isinstance`` on it.
"""

from __future__ import annotations

import typing
from typing import Any

__all__ = ["config_model_from_generic"]


def config_model_from_generic(cls: type[Any], contract: type[Any],
                              model_base: type[Any]) -> type[Any] | None:
    """The config model ``cls`` names as the type argument of ``contract`` (or of a generic
    subclass of it), unless ``cls`` sets ``config_model`` itself; None when it names none."""
    if "config_model" in cls.__dict__:
        return None
    for base in getattr(cls, "__orig_bases__", ()):
        origin = typing.get_origin(base)
        if isinstance(origin, type) and issubclass(origin, contract):
            for model in typing.get_args(base):
                if isinstance(model, type) and issubclass(model, model_base):
                    return model
    return None
