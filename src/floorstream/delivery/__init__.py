"""Delivery: the outbox drained by worker threads into sinks, under per-team policies."""
