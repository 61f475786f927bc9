# Part of invenio-stats-dashboard (MIT License).
"""Refreshes and bookmark writes of one run step, done together (issue 11, hourly cost).

An hourly run does one unit of one or two days per (series, community): 408
units for 50 communities. Refreshing the written index and writing the
bookmark (with a refresh of the bookmark index) per unit cost more than
computing the day. A :class:`Batch` collects, for the units of one step of
one community's chain (its deltas, then its snapshots), the indices they
wrote and the bookmarks they earned, and :meth:`Batch.commit` makes them
true in two requests: one refresh of every written index, then one bulk
write of every bookmark.

The guarantees stay those of a bookmark per unit:

* a bookmark is written only after the refresh of the documents it
  promises succeeded — a run killed before or during a commit leaves the
  bookmarks where they were, and the next run re-computes those days (X2);
* the runner commits the deltas' step before a snapshot is planned or
  reads a delta (the snapshot is capped by its delta's bookmark and reads
  its documents by search);
* the runner commits before it releases the chain locks, and a bookmark
  whose chain lock was lost meanwhile is dropped (another run may be
  rewriting those days);
* bookmarks stay in the cluster; they are read by ``GET`` (real time), so
  their writes need no refresh of their own (``status`` refreshes first).

The bookmarks of a community are read once per chain (one multi-get, while
the run holds the community's chain locks, so nobody else moves them) and
kept in the :class:`Marks` cache of the run's context until the chain ends.
"""

import arrow
from invenio_search.engine import search

from ..exceptions import StatsDashboardError
from . import documents as docs
from .bookmarks import MAPPING, CommunityBookmarkAPI


def _value(day):
    """The stored form of a day's bookmark (as ``set_bookmark`` writes it; never future)."""
    when = min(arrow.get(day.isoformat()).to("utc"), arrow.utcnow())
    return when.format("YYYY-MM-DDTHH:mm:ss.SSS")


class Marks:
    """Bookmarks of the run's context: a read-through cache for chains the run holds.

    Only :meth:`load` fills the cache (for one community, under its chain
    locks) and :meth:`forget` empties it; outside a held chain every read
    asks the cluster.
    """

    def __init__(self, client):
        """Bind to the client; the index is created on first write."""
        self.client = client
        self.index = CommunityBookmarkAPI(client).index
        self.cache = {}  # (series name, community) -> day or None
        self._index_exists = False

    def ensure_index(self):
        """Create the bookmark index once per run (not a request per write)."""
        if not self._index_exists:
            if not self.client.indices.exists(index=self.index):
                self.client.indices.create(index=self.index, body={"mappings": MAPPING},
                                           ignore=[400])
            self._index_exists = True

    def load(self, community_id, series_list):
        """Read the bookmarks of ``series_list`` for a community in one multi-get."""
        names = sorted({s.name for s in series_list})
        ids = [f"{name}_{community_id}" for name in names]
        if not ids:
            return
        found = {}
        if self.client.indices.exists(index=self.index):
            res = self.client.mget(index=self.index, body={"ids": ids})
            found = {d["_id"]: d["_source"]["date"] for d in res.get("docs", [])
                     if d.get("found")}
        for name, ident in zip(names, ids):
            value = found.get(ident)
            self.cache[(name, community_id)] = docs.as_day(value) if value else None

    def forget(self, community_id):
        """Drop the cache of a community (its chain locks are released)."""
        for key in [k for k in self.cache if k[1] == community_id]:
            del self.cache[key]

    def get(self, series, community_id):
        """The bookmarked day or None (cached for a held chain, else from the cluster)."""
        key = (series.name, community_id)
        if key in self.cache:
            return self.cache[key]
        mark = CommunityBookmarkAPI(self.client, series.name).get_bookmark(community_id)
        return docs.as_day(mark.datetime) if mark is not None else None

    def set(self, series, community_id, day):
        """Write one bookmark now (lowering one before rewriting: must not wait)."""
        self.write({(series.name, community_id): day})

    def write(self, marks):
        """Write ``{(series name, community): day}`` in one bulk request; raise on failure."""
        if not marks:
            return
        self.ensure_index()
        actions = [{"_op_type": "index", "_index": self.index,
                    "_id": f"{name}_{community_id}",
                    "_source": {"date": _value(day), "aggregation_type": name,
                                "community_id": community_id}}
                   for (name, community_id), day in marks.items()]
        _, errors = search.helpers.bulk(self.client, actions, refresh=False,
                                        raise_on_error=False, raise_on_exception=True)
        for key, day in marks.items():
            if key in self.cache:
                self.cache[key] = day
        if errors:
            info = next(iter(errors[0].values()))
            raise StatsDashboardError(f"{len(errors)} bookmark(s) could not be written: "
                                      f"{info.get('status')} {info.get('error')}")


class Batch:
    """What the units of one step wrote and earned, made true by :meth:`commit`."""

    def __init__(self, ctx):
        """Empty; bound to the run's context (client, bookmark cache)."""
        self.ctx = ctx
        self.indices = set()
        self.marks = {}  # (series name, community) -> (day, chain lock or None)

    def written(self, indices):
        """Indices a unit wrote to (refreshed at the commit)."""
        self.indices.update(indices)

    def bookmark(self, series, community_id, day, lock=None):
        """The bookmark a unit earned, written at the commit (if ``lock`` is still held)."""
        self.marks[(series.name, community_id)] = (day, lock)

    def commit(self):
        """One refresh of every written index, then one bulk write of the bookmarks.

        When the refresh fails nothing is bookmarked (the error propagates;
        the next run re-computes the days). Bookmarks of a chain whose lock
        was lost are dropped.
        """
        if self.indices:
            self.ctx.client.indices.refresh(index=",".join(sorted(self.indices)))
            self.indices.clear()
        marks = {key: day for key, (day, lock) in self.marks.items()
                 if lock is None or not lock.lost.is_set()}
        self.marks.clear()
        self.ctx.marks.write(marks)
