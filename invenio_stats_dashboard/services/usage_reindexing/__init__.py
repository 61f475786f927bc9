# Part of invenio-stats-dashboard (MIT License).
"""Usage-event migration (seed step 3c): enriched ``-v2.0.0`` event indices."""

from ..enrichment import MetadataExtractor
from .bookmarks import EventReindexingBookmarkAPI
from .service import EventReindexingService

__all__ = ("EventReindexingBookmarkAPI", "EventReindexingService", "MetadataExtractor")
