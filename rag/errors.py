"""Domain exceptions: each message says what went wrong and how to fix it."""

from __future__ import annotations


class RagError(Exception):
    """Base class for user-facing errors (CLI exit code 1, HTTP 4xx)."""


class InvalidDocument(RagError):
    """An article could not be read or is not acceptable (empty, binary, not UTF-8, ...)."""


class DuplicateDocument(RagError):
    """The same article text is already indexed (or given twice) under another source id."""


class DocumentNotFound(RagError):
    """No indexed article has the given source id."""


class IndexNotFound(RagError):
    """The index directory holds no index."""


class ManifestMismatch(RagError):
    """The index was built with settings or models other than the running ones."""


class IndexCorrupt(RagError):
    """The durable store is unreadable; the derived files alone can be rebuilt."""


class IndexLocked(RagError):
    """Another process is writing to the index."""


class InvalidQuery(RagError):
    """A question or search parameter is out of range."""


class InvalidTrainingData(RagError):
    """The reader's training data folder is missing or not in SQuAD format."""
