# Part of invenio-stats-dashboard (MIT License).
"""State a series keeps between runs, per (series, community), in the cluster.

Snapshots keep the full item counters of their ``top`` subcounts (a snapshot
document lists only the N largest, so it cannot be continued from alone); the
created/published bases keep the fingerprint of the members they were built
from. The state says which day it describes; a run that does not start right
after it rebuilds it (from the delta documents) instead of trusting it.
Stored in ``stats-aggregation-state`` (ours): ``data`` is not indexed.
"""

from invenio_search.proxies import current_search_client
from invenio_search.utils import prefix_index

INDEX = "stats-aggregation-state"
MAPPING = {"dynamic": "strict", "properties": {
    "series": {"type": "keyword"}, "community_id": {"type": "keyword"},
    "day": {"type": "date", "format": "date_optional_time"},
    "data": {"type": "object", "enabled": False}}}


class AggregationState:
    """Get and put one state document per (series, community)."""

    def __init__(self, client=None):
        """Bind to the client; the index is created on first write."""
        self.client = client or current_search_client
        self.index = prefix_index(INDEX)
        self._exists = False

    def _id(self, series, community_id):
        return f"{series}_{community_id}"

    def get(self, series, community_id):
        """``(day ISO, data)`` or ``(None, None)``."""
        doc = self.client.get(index=self.index, id=self._id(series, community_id),
                              ignore=[404])
        if not doc.get("found"):
            return None, None
        return doc["_source"]["day"], doc["_source"]["data"]

    def put(self, series, community_id, day, data):
        """Record the state as of the end of ``day``."""
        if not self._exists:  # once per run, not a request per snapshot unit
            if not self.client.indices.exists(index=self.index):
                self.client.indices.create(index=self.index, body={"mappings": MAPPING},
                                           ignore=[400])
            self._exists = True
        self.client.index(index=self.index, id=self._id(series, community_id), body={
            "series": series, "community_id": community_id, "day": str(day), "data": data})

    def delete(self, series=None, community_id=None):
        """Forget states (all, or of one series and/or community)."""
        if not self.client.indices.exists(index=self.index):
            return 0
        if series and community_id:  # by id: no search, no version conflict with a put
            res = self.client.delete(index=self.index, id=self._id(series, community_id),
                                     refresh=True, ignore=[404])
            return int(res.get("result") == "deleted")
        filters = [{"term": {k: v}} for k, v in (("series", series),
                                                  ("community_id", community_id)) if v]
        self.client.indices.refresh(index=self.index)  # states put since the last refresh
        res = self.client.delete_by_query(
            index=self.index, refresh=True, conflicts="proceed", body={
                "query": {"bool": {"filter": filters}} if filters else {"match_all": {}}})
        return res.get("deleted", 0)
