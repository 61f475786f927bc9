# Part of invenio-stats-dashboard (MIT License).
"""Family ``records_basis``: records deltas and snapshots on the created and published bases (R5).

These series answer "how do the records that are in ``c`` **now** distribute
over their creation (publication) dates": added on ``D`` = members created
(published) on ``D``, removed = 0, snapshot ``D`` = members created
(published) on or before ``D``. Publication dates are the record's metadata,
EDTF normalised to the first day (``2020`` → 2020-01-01, an interval → its
start); a member without a readable publication date is not counted on the
published basis. Metrics are those of the added basis over the set, with
current metadata (R3); parents and uploaders of a snapshot are distinct over
all members dated up to the day.

**Which documents.** A community's daily documents run from the *floor* —
the earliest creation date among its members (for ``global``: the instance's
first record) — to today, like the added basis. Publication dates before the
floor (a 2020 deposit of a book published in 1850) get a delta document on
their own day only — no daily zero documents back to 1850 — and are in every
snapshot from the floor on. So the number of documents is bounded by the
history of the repository, plus one per distinct back-dated day.

**When.** R5 asks for a recomputation whenever members or dates change; a
run reads the whole member set (memory: the members' metadata) when the
community's fingerprint changed — its log documents (count, last write) and
its records in the records index (count, last update) — or when it is asked
for a day that can carry members. A per-day digest of the members (a sum of
per-record hashes) kept in the state says which stored documents changed:
only those and the days asked are written, so a new member published
yesterday rewrites yesterday's delta and the snapshots since, not history.
"""

import hashlib
import json
from collections import defaultdict

from ..services import events_log as log
from ..search_indices.names import records_index
from . import documents as docs
from .record_metrics import DeltaTally, by_item, classes_of, fetch, key_readers
from .records import first_day as _first_membership_day
from .snapshots import RecordsSnapshot
from .subcounts import blocks

FORMAT = 2  # 2: parents first dated per day in the digests (R4a)
MASK = (1 << 64) - 1
CHUNK = 1000


def first_day(ctx, series, community_id):
    """The community's first membership day (a run extends back to the floor itself)."""
    return _first_membership_day(ctx, series, community_id)


def compute(ctx, series, community_id, days):
    """Yield ``(day, body)`` for every day of ``days`` and every stored day that changed."""
    keys = blocks(ctx.subcount_configs, "records")
    readers = key_readers(keys)
    layout = _layout(series, keys, ctx.top_limit)
    stored_day, state = ctx.state.get(series.name, community_id)
    if not state or state.get("layout") != layout:
        state = None
    fingerprint, log_written = _shared(ctx, community_id, "fingerprint",
                                       lambda: _fingerprint(ctx, community_id))
    same = bool(state) and state["fingerprint"] == fingerprint
    if same and _recent(state, log_written, days):
        for day in days:  # the bodies the last walk wrote for these very days
            yield day, json.loads(json.dumps(state["recent"][day.isoformat()]))
        return
    if same and _unchanged_tail(state, days):
        yield from _tail(ctx, series, community_id, days, state, readers)
        return
    members = _shared(ctx, community_id, "members",
                      lambda: _members(ctx, community_id, readers))
    walk = Walk(series, members, state, days, readers)
    recent = {}
    for day, body in walk.documents(keys, ctx.top_limit):
        if day in walk.asked and day >= walk.end - docs.DAY:
            recent[day.isoformat()] = json.loads(json.dumps(body))
        yield day, body
    # Reached only when the engine took the last document (see snapshots.py).
    ctx.state.put(series.name, community_id, walk.end, {
        "layout": layout, "fingerprint": fingerprint, **walk.summary(),
        "recent": recent, "members_at": ctx.now})


def _recent(state, log_written, days):
    """Whether the state holds the bodies of every day asked, still valid.

    An hourly run asks again for the day(s) the last one wrote. With the same
    fingerprint the members are the same, so are the bodies — unless a log
    document was written after the instant the last walk read the members
    as of (its ``event_date`` may be past that instant, T3): then walk again.
    """
    recent, at = state.get("recent") or {}, state.get("members_at")
    if not at or not all(day.isoformat() in recent for day in days):
        return False
    return log_written is None or log_written <= log.epoch_ms(at) + 999


def _shared(ctx, community_id, name, read):
    """``read()``, once per community's chain (four series, one member set).

    Safe because the fingerprint is always read first: a state stores a
    fingerprint taken before its members were read, so a change in between
    makes the next run read again — as when each series read its own.
    """
    memo = ctx.chain_memo(community_id)
    if memo is None:
        return read()
    if name not in memo:
        memo[name] = read()
    return memo[name]


def _layout(series, keys, top_limit):
    text = json.dumps([FORMAT, series.name, [(b.key, b.snapshot_type, [
        (s.field, s.label_field, s.combine) for s in b.sources]) for b in keys], top_limit])
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _fingerprint(ctx, community_id):
    """What changes when the members, their dates or their metadata may have changed;
    with the last write time of the community's log documents (epoch ms or None)."""
    log_part = log.search_log({"size": 0, "track_total_hits": True,
                               "query": {"term": {"community_id": community_id}},
                               "aggs": {"written": {"max": {"field": "timestamp"}},
                                        "updated": {"max": {"field": "updated_timestamp"}}}},
                              ctx.client)
    query = ({"match_all": {}} if community_id == log.GLOBAL
             else {"term": {"parent.communities.ids": community_id}})
    records_part = ctx.client.search(index=records_index(), body={
        "size": 0, "track_total_hits": True, "query": query,
        "aggs": {"updated": {"max": {"field": "updated"}}}})
    values = [log_part["hits"]["total"]["value"], log_part["aggregations"]["written"]["value"],
              log_part["aggregations"]["updated"]["value"],
              records_part["hits"]["total"]["value"],
              records_part["aggregations"]["updated"]["value"]]
    written = [v for v in values[1:3] if v is not None]
    return (hashlib.sha1(json.dumps(values).encode()).hexdigest()[:16],
            max(written) if written else None)


def _members(ctx, community_id, readers):
    """Current metadata of the versions in the community now (their last transition: added)."""
    if not ctx.alias_exists(log.alias_name()):
        return []
    now = log.epoch_ms(ctx.now) + 999  # ctx.now is to the second: its whole second (T3)
    ids = log.log_record_ids(ctx.client, [community_id])
    members = []
    for start in range(0, len(ids), CHUNK):
        pairs = log.documents_by_pair(ids[start:start + CHUNK], ctx.client, [community_id])
        inside = []
        for (record_id, _c), hits in pairs.items():
            changes = [t for t in log.transitions(hits) if log.epoch_ms(t.event_date) <= now]
            if changes and changes[-1].event_type == log.ADDED:
                inside.append(record_id)
        members.extend(fetch(ctx, inside, readers).values())
    return members


def _unchanged_tail(state, days):
    """Nothing changed and the days asked lie after every member's date: no read needed."""
    start, end = docs.as_day(state["start"]), docs.as_day(state["end"])
    last = docs.as_day(state["max_date"]) if state.get("max_date") else None
    return (start <= days[0] <= end + docs.DAY
            and (last is None or last <= end and last < days[0]))


def _tail(ctx, series, community_id, days, state, readers):
    """Days after the last member date: zero deltas, the final snapshot."""
    body = state.get("final") if series.kind == "snapshot" else None
    for day in days:
        yield day, json.loads(json.dumps(body)) if body is not None else _zero(readers)
    end = max(docs.as_day(state["end"]), days[-1])
    if end != docs.as_day(state["end"]):
        points = state["points"]
        constant = points[-1][1] if series.kind == "snapshot" else 0
        if points and points[-1][1] != constant:
            points.append([(docs.as_day(state["end"]) + docs.DAY).isoformat(), constant])
        ctx.state.put(series.name, community_id, end, {**state, "end": end.isoformat()})


def _zero(readers):
    return DeltaTally(readers).body()


def _digest(values):
    text = json.dumps(values)
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


class Digests:
    """Per-day digests of what a stored document was computed from."""

    def __init__(self, state):
        """From the state (None: nothing stored yet)."""
        state = state or {}
        self.start = docs.as_day(state["start"]) if state.get("start") else None
        self.end = docs.as_day(state["end"]) if state.get("end") else None
        self.points = [(docs.as_day(d), v) for d, v in state.get("points") or ()]
        self.sparse = {docs.as_day(d): v for d, v in (state.get("sparse") or {}).items()}

    def get(self, day):
        """The digest of ``day``'s stored document, or None if none is stored."""
        if day in self.sparse:
            return self.sparse[day]
        if self.start is None or not self.start <= day <= self.end:
            return None
        value = None
        for point, digest in self.points:  # few points: days that carry members
            if point > day:
                break
            value = digest
        return value


class Walk:
    """One pass over the days, from the members dated by the series' basis."""

    def __init__(self, series, members, state, days, readers):
        """Group the members by date and fix the range of daily documents."""
        self.series, self.readers = series, readers
        self.old = Digests(state)
        self.asked = set(days)
        self.by_date = defaultdict(list)
        for info in members:
            day = info.created if series.basis == "created" else info.published
            if day is not None:
                self.by_date[day].append(info)
        for infos in self.by_date.values():
            infos.sort(key=lambda i: i.id)
        # R4a on these bases: a parent (per files class, per subcount item) is added on
        # the date of its first dated member, so that snapshot = previous + delta
        self.first_dated, firsts = {}, defaultdict(list)
        for day in sorted(self.by_date):
            for info in self.by_date[day]:
                for cls in classes_of([info]):
                    for item in [None, *by_item([info])]:
                        if (item, info.parent, cls) not in self.first_dated:
                            self.first_dated[(item, info.parent, cls)] = day
                            firsts[day].append(repr((item, info.parent, cls)))
        # a day's digest: its members and the parents first dated on it (a member
        # dated earlier changes a later day's parents without changing its members)
        self.digest = {d: (sum(i.digest() for i in infos) + _digest(sorted(firsts[d]))) & MASK
                       for d, infos in self.by_date.items()}
        floor = min((i.created for i in members if i.created), default=None)
        self.start = min(d for d in (self.old.start, floor, days[0]) if d is not None)
        self.end = max(d for d in (self.old.end, days[-1]) if d is not None)
        self.points, self.sparse, self.final = [], {}, None

    def documents(self, keys, limit):
        """``(day, body)`` of the days asked and of the stored days whose digest changed."""
        if self.series.kind == "delta":
            yield from self._deltas()
        else:
            yield from self._snapshots(keys, limit)

    def _days(self):
        day = self.start
        while day <= self.end:
            yield day
            day += docs.DAY

    def _point(self, day, digest):
        if not self.points or self.points[-1][1] != digest:
            self.points.append((day, digest))

    def _deltas(self):
        before = sorted({d for d in self.by_date if d < self.start}
                        | {d for d in self.old.sparse if d < self.start})
        for day in before:
            digest = self.digest.get(day, 0)
            if digest:
                self.sparse[day] = digest
            if digest != self.old.get(day) and (digest or self.old.get(day) is not None):
                yield day, self._delta(day)
        for day in self._days():
            digest = self.digest.get(day, 0)
            self._point(day, digest)
            if day in self.asked or digest != self.old.get(day):
                yield day, self._delta(day)

    def _delta(self, day):
        infos = self.by_date.get(day, [])
        tally = DeltaTally(self.readers)
        for info in infos:
            tally.record("added", info)
        versions = defaultdict(list)
        for info in infos:
            versions[info.parent].append(info)
        for parent in sorted(versions):
            tally.parent("added", self._new(day, None, parent, classes_of(versions[parent])))
            for item, carrying in sorted(by_item(versions[parent]).items()):
                tally.parent("added", self._new(day, item, parent, classes_of(carrying)), item)
        return tally.body()

    def _new(self, day, item, parent, classes):
        """The ``classes`` in which ``parent`` (for ``item``) is dated first on ``day``."""
        return {cls for cls in classes if self.first_dated[(item, parent, cls)] == day}

    def _snapshots(self, keys, limit):
        counters = Cumulative(keys)
        running = 0
        for day in sorted(d for d in self.by_date if d < self.start):
            counters.add(self.by_date[day])
            running = (running + self.digest[day]) & MASK
        for day in self._days():
            if day in self.by_date:
                counters.add(self.by_date[day])
                running = (running + self.digest[day]) & MASK
            self._point(day, running)
            if day in self.asked or running != self.old.get(day):
                yield day, RecordsSnapshot.render(counters.counters, keys, limit)
        self.final = RecordsSnapshot.render(counters.counters, keys, limit)

    def summary(self):
        """What the next run needs (stored in the state)."""
        return {"start": self.start.isoformat(), "end": self.end.isoformat(),
                "max_date": max(self.by_date).isoformat() if self.by_date else None,
                "points": [[d.isoformat(), v] for d, v in self.points],
                "sparse": {d.isoformat(): v for d, v in self.sparse.items()},
                "final": self.final}


class Cumulative:
    """Snapshot counters over members added date by date (distinct parents and owners)."""

    def __init__(self, keys):
        """Zero counters (the records snapshot's layout)."""
        self.counters = RecordsSnapshot.empty(keys)
        self.seen = set()

    def _first(self, key):
        if key in self.seen:
            return False
        self.seen.add(key)
        return True

    def add(self, infos):
        """Members dated the next day (sorted by id)."""
        c = self.counters
        for info in infos:
            n = 1 if info.files_class == "with_files" else 0
            if info.files_class:
                c["records"][n] += 1
                c["parents"][n] += self._first(("p", info.parent, n))
            c["files"][0] += info.file_count
            c["files"][1] += info.volume
            if info.owner is not None:
                c["uploaders"] += self._first(("o", info.owner))
            for key, values in info.items.items():
                table = c["items"].setdefault(key, {})
                for value, (count, volume) in values.items():
                    entry = table.get(value)
                    if entry is None:
                        entry = table[value] = [value, 0, 0, 0, 0, 0, 0.0]
                    label = info.labels.get((key, value))
                    if label is not None and self._first(("l", key, value)):
                        entry[0] = label
                    if info.files_class:
                        entry[1 + n] += 1
                        entry[3 + n] += self._first(("i", key, value, info.parent, n))
                    entry[5] += count
                    entry[6] += volume
