"""The pluggy markers, in a module of their own so plugins can import them cheaply."""

import pluggy

PROJECT_NAME = "floorstream"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
