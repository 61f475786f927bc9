# Part of invenio-stats-dashboard (MIT License).
"""Migration and re-enrichment positions in ``stats-bookmarks-reindexing``."""

from invenio_search.utils import prefix_index

from ...aggregations.bookmarks import CommunityBookmarkAPI
from ...search_indices.names import BOOKMARKS_REINDEXING


class EventReindexingBookmarkAPI(CommunityBookmarkAPI):
    """Migration positions: one document per ``<type>-YYYY-MM-reindexing`` task.

    Upstream's fields are kept; ours are ``last_record_id`` (groups are
    copied in ``recid`` order, so a resumed run continues after it),
    ``config_hash`` (the subcount definition the enrichment used) and
    ``membership_mark`` (the membership log's newest write when the month's
    stamps were computed: later retroactive writes make it out of date). An existing
    index lacking any of our fields (made by upstream, or by an older version)
    gets them mapped.
    """

    INDEX = BOOKMARKS_REINDEXING
    MAPPING = {"dynamic": "strict", "properties": {
        "task_id": {"type": "keyword"}, "last_event_id": {"type": "keyword"},
        "last_event_timestamp": {"type": "date", "format": "date_optional_time"},
        "last_record_id": {"type": "keyword"}, "config_hash": {"type": "keyword"},
        "membership_mark": {"type": "date", "format": "date_optional_time"},
        "completed": {"type": "boolean"}}}

    def __init__(self, client=None):
        """Bind to the reindexing bookmark index."""
        super().__init__(client, "reindexing")
        self.index = prefix_index(self.INDEX)
        self._ready = False  # per instance: the index may be deleted between runs

    def _ensure(self):
        if self._ready:
            return
        if not self.client.indices.exists(index=self.index):
            self.client.indices.create(index=self.index, body={"mappings": self.MAPPING},
                                       ignore=[400])
        else:
            self._add_missing_fields()
        self._ready = True

    def _add_missing_fields(self):
        """Map every field of ``MAPPING`` the existing index lacks.

        An index made by upstream's package (strict, its three fields) or by
        an older version of ours would reject our documents otherwise.
        """
        found = self.client.indices.get_mapping(index=self.index)
        have = {name for body in found.values()
                for name in body["mappings"].get("properties", {})}
        missing = {name: field for name, field in self.MAPPING["properties"].items()
                   if name not in have}
        if missing:
            self.client.indices.put_mapping(index=self.index, body={"properties": missing})

    def set_bookmark(self, task_id, last_event_id=None, last_event_timestamp=None,
                     completed=False, last_record_id=None, config_hash=None,
                     membership_mark=None):
        """Record the position (and whether the month is complete)."""
        self._ensure()
        # No refresh: bookmarks are read by id, and GET is real-time.
        self.client.index(index=self.index, id=task_id, body={
            "task_id": task_id, "last_event_id": last_event_id,
            "last_event_timestamp": last_event_timestamp, "last_record_id": last_record_id,
            "config_hash": config_hash, "membership_mark": membership_mark,
            "completed": completed})

    def get_bookmark(self, task_id, refresh_time=60):
        """The bookmark document, or None."""
        if not self.client.indices.exists(index=self.index):
            return None
        doc = self.client.get(index=self.index, id=task_id, ignore=[404])
        return doc["_source"] if doc.get("found") else None

    def delete_bookmark(self, task_id):
        """Forget a month's progress."""
        if self.client.indices.exists(index=self.index):
            # No refresh: bookmarks are read by id (real-time GET), never searched.
            self.client.delete(index=self.index, id=task_id, ignore=[404])

    reset_bookmark_to_beginning = delete_bookmark
