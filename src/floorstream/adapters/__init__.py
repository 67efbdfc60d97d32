"""Adapters: connect to a source and emit Changes. Builtin ones are plugins like any other."""
