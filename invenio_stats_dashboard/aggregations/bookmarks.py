# Part of invenio-stats-dashboard (MIT License).
"""Progress bookmarks in ``stats-bookmarks-community`` (one document per job and scope)."""

import arrow
from invenio_search.proxies import current_search_client
from invenio_search.utils import prefix_index

from ..search_indices.names import BOOKMARKS_COMMUNITY as INDEX
MAPPING = {
    "dynamic": "strict",
    "properties": {
        "date": {"type": "date", "format": "date_optional_time"},
        "aggregation_type": {"type": "keyword"},
        "community_id": {"type": "keyword"},
    },
}


class CommunityBookmarkAPI:
    """Bookmarks of one job type (``agg_type``), keyed by community (or scope)."""

    def __init__(self, client=None, agg_type=None, agg_interval="day"):
        """Bind to a client and a job type."""
        self.client = client or current_search_client
        self.agg_type = agg_type
        self.agg_interval = agg_interval
        self.index = prefix_index(INDEX)

    def _ensure_index(self):
        if not self.client.indices.exists(index=self.index):
            self.client.indices.create(
                index=self.index, body={"mappings": MAPPING}, ignore=[400]
            )

    def _doc_id(self, community_id):
        return f"{self.agg_type}_{community_id}"

    def set_bookmark(self, community_id, value):
        """Upsert the bookmark (a future date is capped at now)."""
        self._ensure_index()
        when = min(arrow.get(value).to("utc"), arrow.utcnow())
        self.client.index(
            index=self.index, id=self._doc_id(community_id), refresh=True,
            body={"date": when.format("YYYY-MM-DDTHH:mm:ss.SSS"),
                  "aggregation_type": self.agg_type, "community_id": community_id},
        )

    def get_bookmark(self, community_id, refresh_time=60):
        """The bookmarked instant (``arrow.Arrow``) or None."""
        if not self.client.indices.exists(index=self.index):
            return None
        doc = self.client.get(index=self.index, id=self._doc_id(community_id),
                              ignore=[404])
        if not doc.get("found"):
            return None
        return arrow.get(doc["_source"]["date"])

    def clear_bookmark(self, community_id):
        """Delete one bookmark; returns 0 or 1."""
        if not self.client.indices.exists(index=self.index):
            return 0
        result = self.client.delete(index=self.index, id=self._doc_id(community_id),
                                    ignore=[404], refresh=True)
        return 1 if result.get("result") == "deleted" else 0


class CommunityEventBookmarkAPI(CommunityBookmarkAPI):
    """Bookmarks of the community-events backfill."""

    def __init__(self, client=None, agg_interval="day"):
        """Same store, job type ``community-events-indexing``."""
        super().__init__(client, "community-events-indexing", agg_interval)
