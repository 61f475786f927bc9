# Part of invenio-stats-dashboard (MIT License).
"""Reference computation of the eight aggregation series, from raw inputs only.

Written from ``shared/spec/counting-rules.md`` and the document shapes of
``shared/spec/aggregations.md`` (§3.1, §4.1, §5.1, §6.1, §7) — never from the
package's code — so that the acceptance tests can catch its mistakes. Plain
Python over sets; no OpenSearch, no membership log.

Inputs:

* :class:`Record` — one published version as the test created it (read back
  from the RDM API): parent, owner, ``created``, publication date, files,
  metadata values of every subcount (R3: current metadata).
* :class:`History` — the membership actions *as the test drove them*
  (publish, add, remove, delete, restore, community deletion, each at its
  instant); :meth:`History.timelines` turns them into membership by M1–M5.
* :class:`Event` — the usage events as planned (instant, record, visitor,
  robot flag, file key and size, country); stamped here by U1/M1/T3.

Interpretations where the rules leave room (each cited where it is coded):

* Day edges (T1): a change at ``D 00:00:00.000`` belongs to ``D``; "state at
  the start of D" is the state after every change before ``D``, "at the end"
  after every change before ``D+1``.
* R4a parents: a parent's presence in ``c`` is "some version in ``c``"; its
  added/removed/changed-within follow R1 on that presence. Files class of an
  added parent: its versions in ``c`` at the end of the day (of a removed one:
  at the start); for a parent that entered and left within the day, the
  versions in the day's added (removed) record set.
* Subcount items (S2): "the same computation over the records carrying the
  value" — records, parents (presence restricted to carrying versions) and
  files; for ``file_types`` only that extension's files (S5). Items listed in
  a delta: values carried by a record of the day's added or removed set.
* Labels (S7): vocabulary ``title`` (localised object) for resource types,
  languages, rights; ``name`` for affiliations and funders, ``subject`` for
  subjects; otherwise the id string (access status, publisher, periodical,
  file type, country). Values without an id are not counted (S3, S4).
* Snapshots of the records series describe the set of records in ``c`` at
  the end of ``D`` (R2): parents = distinct parents of those records per
  files class (R4a), uploaders = distinct owners of them (R4).
  ``all`` subcounts list every item with a non-zero record count, ``top``
  the N largest by record count, ties by id ascending (S6).
* Created / published bases (R5): the same computation over a synthetic
  history in which each record in ``c`` *now* joins at its creation instant
  (publication date, 00:00) and never leaves; so ``removed`` is always 0 and
  a parent is added on the day of its earliest such version. Publication
  dates are normalised to the start of their EDTF range (``2023`` →
  2023-01-01), as the log's ``record_published_date``.
* Usage (U1–U5, T3): an event is stamped with the communities its version is
  in at the last instant of its stored second; visitors are distinct
  visitors of the day; a view counts under every file extension of its
  record, a download under its file's (U5); usage snapshots are sums of the
  daily documents (U4), ``top`` by ``total_events`` per side, ties by id.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

GLOBAL = "global"
DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)
CLASSES = ("metadata_only", "with_files")

#: ``COMMUNITY_STATS_SUBCOUNTS`` defaults (spec §7): key -> snapshot type.
RECORD_KEYS = {"resource_types": "all", "access_statuses": "all", "languages": "top",
               "subjects": "top", "rights": "top", "funders": "top", "periodicals": "top",
               "publishers": "top", "affiliations": "top", "file_types": "all"}
USAGE_KEYS = {"resource_types": "all", "access_statuses": "all", "languages": "top",
              "rights": "top", "funders": "top", "periodicals": "top", "publishers": "top",
              "affiliations": "top", "countries": "top", "file_types": "all"}
VIEW_METRICS = ("total_events", "unique_visitors", "unique_records", "unique_parents")
DOWNLOAD_METRICS = VIEW_METRICS + ("unique_files", "total_volume")


def utc(value):
    """Aware UTC datetime of a datetime (naive = UTC) or ISO string."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(
        timezone.utc)


def midnight(day):
    return datetime.combine(day, time(0), tzinfo=timezone.utc)


def days(first, last):
    """Every day from ``first`` to ``last`` inclusive."""
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def publication_day(text):
    """Start of the EDTF range of a publication date (``2023``, ``2023-05``, ``a/b``)."""
    start = str(text).split("/")[0]
    parts = [int(p) for p in start.split("-")]
    return date(parts[0], *(parts[1:] + [1, 1])[:2])


# --- records ------------------------------------------------------------------

@dataclass(frozen=True)
class Record:
    """One published version as a reader sees it today (R3)."""

    id: str
    parent: str
    owner: str
    created: datetime
    published: date
    files_enabled: bool
    files: tuple = ()  # (key, size, ext)
    values: dict = field(default_factory=dict)  # subcount key -> ((id, label), ...)

    @property
    def klass(self):
        return "with_files" if self.files_enabled else "metadata_only"

    @property
    def exts(self):
        return sorted({ext for _, _, ext in self.files if ext})

    @classmethod
    def from_json(cls, data):
        """From a record's JSON (RDM API dump or records-index ``_source``)."""
        md = data.get("metadata", {})
        entries = data.get("files", {}).get("entries") or {}
        entries = entries.values() if isinstance(entries, dict) else entries
        files = tuple(sorted((e["key"], e["size"], e.get("ext") or _ext(e["key"]))
                             for e in entries))
        return cls(
            id=data["id"], parent=data["parent"]["id"],
            owner=str(data["parent"]["access"]["owned_by"]["user"]),
            created=utc(data["created"]), published=publication_day(md["publication_date"]),
            files_enabled=bool(data.get("files", {}).get("enabled")), files=files,
            values=record_values(data, files))


def _ext(key):
    return key.rsplit(".", 1)[-1].lower() if "." in key else None


def _distinct(pairs):
    """``((id, label), ...)`` with ids present, first label per id (S2: once per value)."""
    seen = {}
    for id_, label in pairs:
        if id_ not in (None, "") and id_ not in seen:
            seen[id_] = label
    return tuple(seen.items())


def record_values(data, files):
    """Subcount values of a record per key (S2–S5, S7 labels)."""
    md = data.get("metadata", {})
    people = [*md.get("creators", []), *md.get("contributors", [])]
    journal = (data.get("custom_fields") or {}).get("journal:journal") or {}
    rt = md.get("resource_type") or {}
    return {
        "resource_types": _distinct([(rt.get("id"), rt.get("title"))]),
        "access_statuses": _distinct([(data.get("access", {}).get("status"),) * 2]),
        "languages": _distinct((v.get("id"), v.get("title")) for v in md.get("languages", [])),
        "subjects": _distinct((v.get("id"), v.get("subject")) for v in md.get("subjects", [])),
        "rights": _distinct((v.get("id"), v.get("title")) for v in md.get("rights", [])),
        "funders": _distinct(((f.get("funder") or {}).get("id"), (f.get("funder") or {}).get(
            "name")) for f in md.get("funding", [])),
        "periodicals": _distinct([(journal.get("title"),) * 2]),
        "publishers": _distinct([(md.get("publisher"),) * 2]),
        "affiliations": _distinct((a.get("id"), a.get("name"))
                                  for p in people for a in p.get("affiliations", [])),
        "file_types": _distinct((ext, ext) for _, _, ext in files),
    }


# --- membership (M1–M5) ---------------------------------------------------------

class History:
    """Membership actions as the test drove the services (instant, kind, ids)."""

    def __init__(self):
        self.actions = []

    def _do(self, when, kind, record=None, community=None):
        self.actions.append((utc(when), len(self.actions), kind, record, community))

    def publish(self, when, record):
        self._do(when, "publish", record)

    def add(self, when, record, community):
        self._do(when, "add", record, community)

    def remove(self, when, record, community):
        self._do(when, "remove", record, community)

    def delete(self, when, record):
        self._do(when, "delete", record)

    def restore(self, when, record):
        self._do(when, "restore", record)

    def delete_community(self, when, community):
        self._do(when, "delete_community", community=community)

    def timelines(self, records):
        """``{community: {record: [(instant, seq, in?), ...]}}``: real changes only (M4).

        M5: membership is the parent's; a version is in ``c`` while published,
        not deleted (M1, M3) and its parent is in ``c``; ``global`` from
        publication (M2). Deleting a version removes it from what it is in;
        restoring re-adds it to its parent's communities that still exist (M3).
        Deleting a community changes no membership (nothing is recorded).
        """
        parent = {r.id: r.parent for r in records}
        versions = defaultdict(list)
        parent_in, state, live, dead = set(), {}, set(), set()
        out = defaultdict(lambda: defaultdict(list))

        def put(v, c, value, when, seq):
            if state.get((v, c), False) != value:
                state[(v, c)] = value
                out[c][v].append((when, seq, value))

        def join(v, when, seq):
            put(v, GLOBAL, True, when, seq)
            for p, c in sorted(parent_in):
                if p == parent[v] and c not in dead:
                    put(v, c, True, when, seq)

        for when, seq, kind, rec, c in sorted(self.actions):
            if kind == "publish":
                versions[parent[rec]].append(rec)
                live.add(rec)
                join(rec, when, seq)
            elif kind == "add":
                parent_in.add((parent[rec], c))
                for v in versions[parent[rec]]:
                    if v in live:
                        put(v, c, True, when, seq)
            elif kind == "remove":
                parent_in.discard((parent[rec], c))
                for v in versions[parent[rec]]:
                    put(v, c, False, when, seq)
            elif kind == "delete":
                live.discard(rec)
                for (v, comm), value in list(state.items()):
                    if v == rec and value:
                        put(v, comm, False, when, seq)
            elif kind == "restore":
                live.add(rec)
                join(rec, when, seq)
            elif kind == "delete_community":
                dead.add(c)
        return {c: dict(recs) for c, recs in out.items()}


def state_before(timeline, instant):
    """Membership after every change strictly before ``instant``."""
    value = False
    for when, _seq, new in timeline:
        if when >= instant:
            break
        value = new
    return value


def day_flags(timeline, start, end):
    """R1: (added, removed) over ``[start, end)``; both when it changed but ended as it began."""
    s0, s1 = state_before(timeline, start), state_before(timeline, end)
    changed = any(start <= when < end for when, _seq, _ in timeline)
    same = s0 == s1 and changed
    return (not s0 and s1) or same, (s0 and not s1) or same


def presence(timelines):
    """Timeline of "some version is in" from the versions' timelines (R4a)."""
    merged = sorted((when, seq, i, new) for i, tl in enumerate(timelines)
                    for when, seq, new in tl)
    current, count, out = set(), False, []
    for when, seq, i, new in merged:
        (current.add if new else current.discard)(i)
        if bool(current) != count:
            count = bool(current)
            out.append((when, seq, count))
    return out


def basis_timelines(timelines, records, basis):
    """R5: members *now* entering at their creation instant (publication day), for good."""
    if basis == "added":
        return timelines
    entry = {r.id: (r.created if basis == "created" else midnight(r.published)) for r in records}
    far = datetime.max.replace(tzinfo=timezone.utc)
    return {c: {v: [(entry[v], 0, True)] for v, tl in recs.items() if state_before(tl, far)}
            for c, recs in timelines.items()}


# --- records documents ----------------------------------------------------------

def _records_block(recs):
    block = dict.fromkeys(CLASSES, 0)
    for r in recs:
        block[r.klass] += 1
    return block


def _files_block(recs, ext=None):
    files = [(size) for r in recs for _, size, e in r.files if ext is None or e == ext]
    return {"file_count": len(files), "data_volume": float(sum(files))}


def _delta_core(tls, recs, start, end, ext=None):
    """records/parents/files blocks of one day over ``recs`` (a universe), plus the added set."""
    sets = {"added": [], "removed": []}
    touched = [r for r in recs if any(start <= w < end for w, _, _ in tls.get(r.id, ()))]
    for r in touched:
        added, removed = day_flags(tls[r.id], start, end)
        if added:
            sets["added"].append(r)
        if removed:
            sets["removed"].append(r)
    parents = {side: dict.fromkeys(CLASSES, 0) for side in sets}
    family = defaultdict(list)
    for r in recs:
        family[r.parent].append(r)
    for p in {r.parent for r in touched}:
        versions = [v for v in family[p] if v.id in tls]
        ptl = presence([tls[v.id] for v in versions])
        flags = dict(zip(sets, day_flags(ptl, start, end)))
        for side, edge in (("added", end), ("removed", start)):
            if not flags[side]:
                continue
            members = [v for v in versions if state_before(tls[v.id], edge)]
            if not members:  # entered and left within the day
                members = [v for v in versions if v in sets[side]]
            for klass in {v.klass for v in members}:
                parents[side][klass] += 1
    return {
        "records": {side: _records_block(s) for side, s in sets.items()},
        "parents": parents,
        "files": {side: _files_block(s, ext) for side, s in sets.items()},
    }, sets


def _carriers(recs, key):
    out, labels = defaultdict(list), {}
    for r in recs:
        for id_, label in r.values.get(key, ()):
            out[id_].append(r)
            labels.setdefault(id_, label)
    return out, labels


def records_delta(timelines, records, community, day):
    """Records delta document (§3.1) of ``community`` on ``day`` (timelines of one basis)."""
    tls = timelines.get(community, {})
    recs = [r for r in records if r.id in tls]
    start, end = midnight(day), midnight(day + DAY)
    core, sets = _delta_core(tls, recs, start, end)
    doc = {"community_id": community, "period_start": f"{day}T00:00:00",
           "period_end": f"{day}T23:59:59", **core,
           "uploaders": len({r.owner for r in sets["added"]}), "subcounts": {}}
    day_recs = {r.id for s in sets.values() for r in s}
    for key in RECORD_KEYS:
        carriers, labels = _carriers(recs, key)
        items = []
        for id_ in sorted(carriers):
            if not any(r.id in day_recs for r in carriers[id_]):
                continue
            ext = id_ if key == "file_types" else None
            item_core, _ = _delta_core(tls, carriers[id_], start, end, ext)
            items.append({"id": id_, "label": labels[id_], **item_core})
        doc["subcounts"][key] = items
    return doc


def _snapshot_core(members, ext=None):
    parents = defaultdict(set)
    for r in members:
        parents[r.parent].add(r.klass)
    return {
        "records": _records_block(members),
        "parents": {k: sum(k in ks for ks in parents.values()) for k in CLASSES},
        "files": _files_block(members, ext),
    }


def top(items, rank, limit):
    """S6: the ``limit`` largest by ``rank`` (zero never), ties by id ascending."""
    ranked = [i for i in items if rank(i) > 0]
    return sorted(ranked, key=lambda i: (-rank(i), i["id"]))[:limit]


def records_snapshot(timelines, records, community, day, top_limit=20):
    """Records snapshot document (§4.1): the members at the end of ``day`` (R2)."""
    tls = timelines.get(community, {})
    end = midnight(day + DAY)
    members = [r for r in records if r.id in tls and state_before(tls[r.id], end)]
    core = _snapshot_core(members)
    doc = {"community_id": community, "snapshot_date": f"{day}T00:00:00",
           "total_records": core["records"], "total_parents": core["parents"],
           "total_files": core["files"],
           "total_uploaders": len({r.owner for r in members}), "subcounts": {}}
    for key, kind in RECORD_KEYS.items():
        carriers, labels = _carriers(members, key)
        items = [{"id": id_, "label": labels[id_],
                  **_snapshot_core(carriers[id_], id_ if key == "file_types" else None)}
                 for id_ in sorted(carriers)]
        count = lambda i: sum(i["records"].values())  # noqa: E731
        doc["subcounts"][key] = (top(items, count, top_limit) if kind == "top"
                                 else [i for i in items if count(i)])
    return doc


# --- usage ----------------------------------------------------------------------

@dataclass(frozen=True)
class Event:
    """A usage event as planned (``robot``: flagged robot or machine)."""

    kind: str  # "view" | "download"
    instant: datetime
    recid: str
    visitor: str
    robot: bool = False
    key: str | None = None
    size: int = 0
    country: str | None = None

    @property
    def second(self):
        """The stored second (stock invenio-stats drops the fraction, T3)."""
        return utc(self.instant).replace(microsecond=0)


def stamp(timelines, event):
    """U1/T3: communities the version is in at the last instant of the event's second."""
    end = event.second + SECOND
    return {c for c, recs in timelines.items() if c != GLOBAL
            and event.recid in recs and state_before(recs[event.recid], end)}


def event_values(event, record, key):
    """Subcount values of an event (U5 for file types; country from the event)."""
    if key == "countries":
        return _distinct([(event.country, event.country)])
    if key == "file_types":
        if event.kind == "download":
            return _distinct([(_ext(event.key), _ext(event.key))])
        return _distinct((e, e) for e in record.exts)
    return record.values.get(key, ())


def _usage_block(events, by_id, kind):
    block = {
        "total_events": len(events),
        "unique_visitors": len({e.visitor for e in events}),
        "unique_records": len({e.recid for e in events}),
        "unique_parents": len({by_id[e.recid].parent for e in events}),
    }
    if kind == "download":
        block["unique_files"] = len({(e.recid, e.key) for e in events})
        block["total_volume"] = float(sum(e.size for e in events))
    return block


class Usage:
    """Usage deltas and snapshots of planned events (stamps computed once)."""

    def __init__(self, timelines, records, events):
        self.by_id = {r.id: r for r in records}
        self.events = [e for e in events if not e.robot]  # U2
        self.stamps = {id(e): stamp(timelines, e) for e in self.events}
        self._days = defaultdict(list)
        for e in self.events:
            self._days[e.second.date()].append(e)
        self._deltas = {}

    def first_day(self, community):
        """The community's first day with a counted event (None without one)."""
        found = [d for d, evs in self._days.items()
                 if any(self._counts(e, community) for e in evs)]
        return min(found) if found else None

    def _counts(self, event, community):
        return community == GLOBAL or community in self.stamps[id(event)]

    def delta(self, community, day):
        """Usage delta document (§5.1)."""
        if (community, day) not in self._deltas:
            self._deltas[(community, day)] = self._delta(community, day)
        return _deep(self._deltas[(community, day)])

    def _delta(self, community, day):
        evs = [e for e in self._days.get(day, []) if self._counts(e, community)]
        sides = {k: [e for e in evs if e.kind == k] for k in ("view", "download")}
        doc = {"community_id": community, "period_start": f"{day}T00:00:00",
               "period_end": f"{day}T23:59:59",
               "totals": {k: _usage_block(s, self.by_id, k) for k, s in sides.items()},
               "subcounts": {}}
        for key in USAGE_KEYS:
            carriers, labels = defaultdict(list), {}
            for e in evs:
                for id_, label in event_values(e, self.by_id[e.recid], key):
                    carriers[id_].append(e)
                    labels.setdefault(id_, label)
            doc["subcounts"][key] = [
                {"id": id_, "label": labels[id_],
                 **{k: _usage_block([e for e in carriers[id_] if e.kind == k], self.by_id, k)
                    for k in ("view", "download")}}
                for id_ in sorted(carriers)]
        return doc

    def snapshot(self, community, day, top_limit=20):
        """Usage snapshot document (§6.1): sums of the deltas up to ``day`` (U4)."""
        zero = {"view": dict.fromkeys(VIEW_METRICS, 0),
                "download": {**dict.fromkeys(DOWNLOAD_METRICS, 0), "total_volume": 0.0}}
        totals = _copy(zero)
        items = {key: {} for key in USAGE_KEYS}
        for d in sorted(self._days):
            if d > day:
                break
            delta = self.delta(community, d)
            _add(totals, delta["totals"])
            for key, listed in delta["subcounts"].items():
                for item in listed:
                    slot = items[key].setdefault(item["id"], {"id": item["id"],
                                                              "label": item["label"],
                                                              **_copy(zero)})
                    _add(slot, {k: item[k] for k in ("view", "download")})
        doc = {"community_id": community, "snapshot_date": f"{day}T00:00:00",
               "totals": totals, "subcounts": {}}
        for key, kind in USAGE_KEYS.items():
            listed = [items[key][i] for i in sorted(items[key])]
            if kind == "all":
                doc["subcounts"][key] = listed
            else:
                doc["subcounts"][key] = {
                    f"by_{side}": top(listed, lambda i, s=side: i[s]["total_events"], top_limit)
                    for side in ("view", "download")}
        return doc


def _deep(value):
    if isinstance(value, dict):
        return {k: _deep(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep(v) for v in value]
    return value


def _copy(block):
    return {k: dict(v) for k, v in block.items()}


def _add(into, block):
    for side, metrics in block.items():
        for name, value in metrics.items():
            into[side][name] += value


# --- the eight series -------------------------------------------------------------

SERIES = {
    "community-records-delta-added-agg": ("stats-community-records-delta-added", "delta", "added"),
    "community-records-snapshot-added-agg": ("stats-community-records-snapshot-added",
                                             "snapshot", "added"),
    "community-records-delta-created-agg": ("stats-community-records-delta-created",
                                            "delta", "created"),
    "community-records-snapshot-created-agg": ("stats-community-records-snapshot-created",
                                               "snapshot", "created"),
    "community-records-delta-published-agg": ("stats-community-records-delta-published",
                                              "delta", "published"),
    "community-records-snapshot-published-agg": ("stats-community-records-snapshot-published",
                                                 "snapshot", "published"),
    "community-usage-delta-agg": ("stats-community-usage-delta", "delta", None),
    "community-usage-snapshot-agg": ("stats-community-usage-snapshot", "snapshot", None),
}


class Oracle:
    """Expected document of any (series, community, day)."""

    def __init__(self, records, history, events=(), top_limit=20):
        self.records = list(records)
        self.timelines = history.timelines(self.records)
        self.bases = {b: basis_timelines(self.timelines, self.records, b)
                      for b in ("added", "created", "published")}
        self.usage = Usage(self.timelines, self.records, events)
        self.top_limit = top_limit

    def expected(self, series, community, day):
        _alias, kind, basis = SERIES[series]
        if basis is None:
            if kind == "delta":
                return self.usage.delta(community, day)
            return self.usage.snapshot(community, day, self.top_limit)
        if kind == "delta":
            return records_delta(self.bases[basis], self.records, community, day)
        return records_snapshot(self.bases[basis], self.records, community, day,
                                self.top_limit)

    def first_day(self, series, community):
        """The series' first day with anything to count for ``community`` (None: none)."""
        _alias, _kind, basis = SERIES[series]
        if basis is None:
            return self.usage.first_day(community)
        instants = [w for tl in self.bases[basis].get(community, {}).values() for w, _, _ in tl]
        return min(instants).date() if instants else None

    def members(self, community, day):
        """Record ids in ``community`` at the end of ``day`` (R2's reference set)."""
        end = midnight(day + DAY)
        return {r for r, tl in self.timelines.get(community, {}).items()
                if state_before(tl, end)}
