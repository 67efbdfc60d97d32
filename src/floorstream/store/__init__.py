"""The store: posts, feeds, checkpoints, detector state, quarantine and the outbox."""

from floorstream.store.store import CommitBatch, QuarantineItem, Store

__all__ = ["CommitBatch", "QuarantineItem", "Store"]
