# Part of invenio-stats-dashboard (MIT License).
"""Whether an owner has a member the current batch does not know about (uploaders, R4).

A snapshot's uploaders are the distinct owners of its members, so a day
changes them only for an owner whose known records (those touched in the
batch, and the versions of their parents) go from none in the community to
some, or back — and who has no *other* record in the community meanwhile.
Such another record is untouched during the batch, so its state at the
batch's start holds all batch long: one **witness** settles the question.

Witnesses carry over from batch to batch within a unit (a record seen in the
community at a batch's end stays there until the log touches it again), so
queries are needed mostly the first time an owner shows up in a unit. Those
are done in bulk: per chunk of owners one records-index query (a few of each
owner's records created before the batch ends — earlier records cannot have
been members — current members first) and one read of their transitions; an
owner with more records than that and no member among them is walked page
by page, stopping at the first member.
"""

from ..services import events_log as log
from .record_metrics import PAGE, search_all
from ..search_indices.names import records_index

OWNER = "parent.access.owned_by.user"
OWNERS_PER_QUERY = 500
CANDIDATES = 10  # records per owner looked at in bulk before walking them all


class Witnesses:
    """Witness records per owner, for one (series, community) unit."""

    def __init__(self, ctx, community_id, history):
        """``history(record_ids) -> {id: transitions}`` reads the log for the community."""
        self.ctx, self.community_id, self.history = ctx, community_id, history
        self.witness = {}
        likely = ({"term": {"is_deleted": False}} if community_id == log.GLOBAL
                  else {"term": {"parent.communities.ids": community_id}})
        self.phases = ({"filter": [likely]}, {"must_not": [likely]})

    def outside(self, owners, known, start, state):
        """``{owner: bool}``: a record of the owner outside ``known`` is in the community.

        ``start``: the batch's first instant (epoch ms); only records created
        before it can be members then. ``state(transitions, instant)``: in or out.
        """
        out, todo = {}, []
        for owner in sorted(owners):
            w = self.witness.get(owner)
            if w is not None and w not in known:
                out[owner] = True
            else:
                todo.append(owner)
        for phase in self.phases:
            if not todo:
                break
            left = []
            for n in range(0, len(todo), OWNERS_PER_QUERY):
                chunk = todo[n:n + OWNERS_PER_QUERY]
                found, crowded = self._candidates(chunk, phase, known, start)
                members = self._members([r for ids in found.values() for r in ids],
                                        start, state)
                for owner in chunk:
                    hit = next((r for r in found.get(owner, ()) if r in members), None)
                    if hit is None and owner in crowded:
                        hit = self._walk(owner, phase, known, start, state)
                    if hit is None:
                        left.append(owner)
                    else:
                        out[owner] = True
                        self.witness[owner] = hit
            todo = left
        out.update((owner, False) for owner in todo)
        return out

    def carry(self, owned, known, end, state, history):
        """After a batch: keep witnesses still in at its end; known members become witnesses."""
        for owner, record_ids in owned.items():
            w = self.witness.get(owner)
            if w is not None and w in known and not state(history.get(w, []), end):
                del self.witness[owner]
                w = None
            if w is None:
                w = next((r for r in sorted(record_ids) if state(history.get(r, []), end)), None)
                if w is not None:
                    self.witness[owner] = w

    def _query(self, owners, phase, start):
        return {"bool": {"filter": [{"terms": {OWNER: owners}},
                                    {"range": {"created": {"lt": start, "format": "epoch_millis"}}},
                                    *phase.get("filter", ())],
                         "must_not": list(phase.get("must_not", ()))}}

    def _candidates(self, owners, phase, known, start):
        """A few records per owner (oldest first); and the owners that have more."""
        res = self.ctx.client.search(index=records_index(), body={
            "size": 0, "query": self._query(owners, phase, start),
            "aggs": {"o": {"terms": {"field": OWNER, "size": len(owners)}, "aggs": {
                "r": {"top_hits": {"size": CANDIDATES, "_source": ["id"],
                                   "sort": [{"created": "asc"}, {"id": "asc"}]}}}}}})
        found, crowded = {}, set()
        for bucket in res["aggregations"]["o"]["buckets"]:
            owner = str(bucket["key"])
            found[owner] = [h["_source"]["id"] for h in bucket["r"]["hits"]["hits"]
                            if h["_source"]["id"] not in known]
            if bucket["doc_count"] > CANDIDATES:
                crowded.add(owner)
        return found, crowded

    def _members(self, record_ids, start, state):
        return {r for r, h in self.history(record_ids).items() if state(h, start)}

    def _walk(self, owner, phase, known, start, state):
        """Every record of ``owner`` in this phase, page by page, until a member."""
        page = []
        for hit in search_all(self.ctx, self._query([owner], phase, start), ["id"],
                              sort=("created", "id")):
            if hit["_source"]["id"] not in known:
                page.append(hit["_source"]["id"])
            if len(page) >= PAGE:
                hit_id = next(iter(sorted(self._members(page, start, state))), None)
                if hit_id:
                    return hit_id
                page = []
        return next(iter(sorted(self._members(page, start, state))), None) if page else None
