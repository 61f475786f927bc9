# Part of invenio-stats-dashboard (MIT License).
"""Every index, alias and bookmark-store name the package uses, in one place.

Names are stems: :func:`prefixed` adds the instance's ``SEARCH_INDEX_PREFIX``.
The records index is read from the RDM records service, so an instance that
renames it is followed.
"""

from invenio_search.utils import prefix_index

#: Community membership log (read alias; yearly indices ``<alias>-YYYY``).
COMMUNITY_EVENTS = "stats-community-events"
COMMUNITY_EVENTS_TEMPLATE = "stats-community-events-v1.0.0"
#: Bookmark stores (strict mappings, created on first use).
BOOKMARKS_COMMUNITY = "stats-bookmarks-community"
BOOKMARKS_REINDEXING = "stats-bookmarks-reindexing"
#: invenio-stats event types (our short names) and their stems.
EVENT_TYPES = {"view": "record-view", "download": "file-download"}
#: Suffix of an enriched monthly event index.
ENRICHED_SUFFIX = "-v2.0.0"
#: Key under the mapping ``_meta`` of event indices our extension created live.
META_KEY = "invenio_stats_dashboard"


def prefixed(stem):
    """``stem`` with the instance's index prefix."""
    return prefix_index(stem)


def events_alias(event_type):
    """Prefixed read alias of ``view``/``download`` events (``events-stats-…``)."""
    return prefix_index(f"events-stats-{EVENT_TYPES[event_type]}")


def records_index():
    """Prefixed read alias of published RDM records, from the records service."""
    from invenio_rdm_records.proxies import current_rdm_records_service

    return prefix_index(current_rdm_records_service.record_cls.index.search_alias)
