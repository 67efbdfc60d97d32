"""Parsers that turn one received file (or JSON body) into supply documents.

Each format module exposes ``parse(raw, ...) -> Parsed``; :mod:`.detect` picks one by content.
Parsers never talk to the ERP and never build events: they say what the document *says*.
"""
