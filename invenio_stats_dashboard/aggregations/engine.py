# Part of invenio-stats-dashboard (MIT License).
"""The aggregation engine: units of work, writing, bookmarks, locks — for every series.

A family (``records``, ``records_basis``, ``usage``, ``snapshots``) only
computes document bodies for days (``compute``) and says where a series
begins (``first_day``). Everything else is here and the same for all eight
series:

* **units** ``(series, community, first day, last day)`` of at most
  ``COMMUNITY_STATS_CATCHUP_INTERVAL`` days, planned from the bookmarks
  (``stats-bookmarks-community``, id ``<series>_<community>``);
* a **unit lock** in Redis (``agg:<series>:<community>``, renewed lease): two
  live runs never compute one unit at once, and a killed worker's lock
  expires within a minute;
* **writing** with deterministic ids (X1), chunked, each failed chunk retried
  with its documents (none dropped, fix G20); the bookmark moves to the last
  day written only after the write succeeded (X2);
* **health and cancel** checks between days: a stop leaves the bookmark at
  the last complete day;
* the **cache-invalidation** flags of every past (community, year) a unit
  rewrote (fix G23).
"""

import importlib
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

from flask import current_app
from invenio_search.engine import search
from invenio_search.proxies import current_search_client

from ..exceptions import StatsDashboardError
from ..utils.jobs import JobLock, lease_seconds
from . import documents as docs
from .bookmarks import CommunityBookmarkAPI
from .state import AggregationState

#: family module per (family, kind); records deltas and snapshots of the
#: created/published bases have a module of their own (R5).
FAMILIES = {
    ("records", "delta", "added"): "records",
    ("records", "delta", "created"): "records_basis",
    ("records", "delta", "published"): "records_basis",
    ("records", "snapshot", "added"): "snapshots",
    ("records", "snapshot", "created"): "records_basis",
    ("records", "snapshot", "published"): "records_basis",
    ("usage", "delta", None): "usage",
    ("usage", "snapshot", None): "snapshots",
}
CHUNK = 500  # documents per bulk request
RETRIES = 3


def family(series):
    """The module computing ``series``."""
    name = FAMILIES[(series.family, series.kind, series.basis)]
    return importlib.import_module(f"{__package__}.{name}")


class AggregationStopped(StatsDashboardError):
    """A unit stopped between days (health, cancel); its bookmark holds the position."""


class Context:
    """What every family may read during one run (never write)."""

    def __init__(self, config=None, client=None, now=None):
        """One instant per run: every document of the run gets the same timestamps."""
        config = config or current_app.config
        self.config = config
        self.client = client or current_search_client
        self.subcount_configs = config.get("COMMUNITY_STATS_SUBCOUNTS") or {}
        self.top_limit = int(config.get("COMMUNITY_STATS_TOP_SUBCOUNT_LIMIT", 20))
        self.catchup_days = max(1, int(config.get("COMMUNITY_STATS_CATCHUP_INTERVAL", 365)))
        when = now or datetime.now(timezone.utc)
        self.now = when.strftime("%Y-%m-%dT%H:%M:%S")
        self.today = when.date()
        self.state = AggregationState(self.client)

    def bookmarks(self, series):
        """The bookmark store of ``series``."""
        return CommunityBookmarkAPI(self.client, series.name)

    def get_document(self, series, community_id, day):
        """The stored document of ``series`` for ``(community, day)``, or None."""
        found = self.client.get(index=docs.index_name(series, day),
                                id=docs.doc_id(community_id, day), ignore=[404])
        return found["_source"] if found.get("found") else None

    def iter_documents(self, series, community_id, first=None, last=None, page=500):
        """Stored documents of ``(series, community)`` in day order (``search_after``)."""
        alias = docs.alias_name(series)
        if not self.client.indices.exists_alias(name=alias):
            return
        span = {}
        if first:
            span["gte"] = f"{first.isoformat()}T00:00:00"
        if last:
            span["lte"] = f"{last.isoformat()}T00:00:00"
        filters = [{"term": {"community_id": community_id}}]
        if span:
            filters.append({"range": {series.date_field: span}})
        body = {"query": {"bool": {"filter": filters}}, "size": page,
                "sort": [{series.date_field: "asc"}]}
        while True:
            hits = self.client.search(index=alias, body=body)["hits"]["hits"]
            yield from (h["_source"] for h in hits)
            if len(hits) < page:
                return
            body["search_after"] = hits[-1]["sort"]


@dataclass
class Unit:
    """Days ``first``..``last`` of one series for one community."""

    series: object
    community_id: str
    first: object
    last: object

    @property
    def lock_name(self):
        """Redis lock of the unit (series and community: never two at once)."""
        return f"agg:{self.series.name}:{self.community_id}"

    @property
    def days(self):
        """The unit's days, in order."""
        return docs.days(self.first, self.last)


@dataclass
class UnitResult:
    """What a unit did."""

    unit: Unit
    written: int = 0
    last_day: object = None
    skipped: str | None = None  # why nothing was done (lock held, nothing to do)
    stopped: str | None = None
    errors: list = field(default_factory=list)
    years: set = field(default_factory=set)
    seconds: float = 0.0


def plan(ctx, series, community_id, start_date=None, end_date=None, ignore_bookmark=False):
    """The next unit of ``series`` for a community, or None when it is up to date.

    Lower limit: the bookmarked day (recomputed: it may have been today),
    unless ``ignore_bookmark``; else ``start_date``; else where the series
    begins. Upper: ``end_date`` or today, at most ``catchup_days`` later; a
    snapshot never passes its delta's bookmark.
    """
    mark = None if ignore_bookmark else ctx.bookmarks(series).get_bookmark(community_id)
    if mark is not None:
        first = docs.as_day(mark.datetime)
    elif start_date is not None:
        first = docs.as_day(start_date)
    else:
        first = family(series).first_day(ctx, series, community_id)
    if first is None:
        return None
    last = min(docs.as_day(end_date) if end_date else ctx.today, ctx.today)
    if series.depends_on:
        from .series import get

        delta_mark = ctx.bookmarks(get(series.depends_on)).get_bookmark(community_id)
        if delta_mark is None:
            return None
        last = min(last, docs.as_day(delta_mark.datetime))
    last = min(last, first + (ctx.catchup_days - 1) * docs.DAY)
    if last < first:
        return None
    return Unit(series, community_id, first, last)


def run_unit(ctx, unit, update_bookmark=True, stop=None, health=None):
    """Compute and write one unit under its lock; returns a :class:`UnitResult`."""
    started = time.monotonic()
    result = UnitResult(unit)
    lock = JobLock(unit.lock_name, lease=lease_seconds(), job="aggregation unit")
    if not lock.acquire():
        result.skipped = "another run is computing this unit"
        return result
    try:
        _compute_and_write(ctx, unit, result, update_bookmark, stop, health, lock)
    finally:
        lock.release()
        result.seconds = round(time.monotonic() - started, 3)
    return result


def _compute_and_write(ctx, unit, result, update_bookmark, stop, health, lock):
    series, community_id = unit.series, unit.community_id
    pending, written_through = [], None
    for n, (day, body) in enumerate(family(series).compute(ctx, series, community_id,
                                                           unit.days)):
        pending.append((day, docs.stamp(series, community_id, day, body, ctx.now)))
        if len(pending) >= CHUNK:
            written_through = _flush(ctx, series, community_id, pending, result)
            if update_bookmark:
                ctx.bookmarks(series).set_bookmark(community_id, written_through.isoformat())
        reason = (stop() if stop else None) or (
            "lost its lock" if lock.lost.is_set() else None)
        if not reason and health and n % 30 == 29:
            check = health()
            reason = None if check["is_healthy"] else check["reason"]
        if reason:
            result.stopped = reason
            break
    if pending:
        written_through = _flush(ctx, series, community_id, pending, result)
    if written_through is not None and update_bookmark:
        ctx.bookmarks(series).set_bookmark(community_id, written_through.isoformat())
    result.last_day = written_through


def _flush(ctx, series, community_id, pending, result):
    """Bulk-write ``pending`` (retrying what fails); returns the last day written."""
    actions = [{"_op_type": "index", "_index": docs.index_name(series, day),
                "_id": docs.doc_id(community_id, day), "_source": body}
               for day, body in pending]
    for attempt in range(RETRIES + 1):
        ok, errors = search.helpers.bulk(ctx.client, actions, raise_on_error=False,
                                         raise_on_exception=False, refresh=False)
        result.written += ok
        if not errors:
            break
        failed = {next(iter(e.values())).get("_id") for e in errors}
        actions = [a for a in actions if a["_id"] in failed]
        if attempt == RETRIES:
            result.errors.extend(errors[:5])
            raise StatsDashboardError(
                f"{len(actions)} {series.name} documents could not be written: "
                f"{_reason(errors[0])}")
        time.sleep(0.5 * 2 ** attempt)
    days = [day for day, _ in pending]
    result.years.update(day.year for day in days)
    pending.clear()
    return days[-1]


def _reason(error):
    info = next(iter(error.values()))
    cause = info.get("error")
    if isinstance(cause, dict):
        return f"{cause.get('type')}: {cause.get('reason')}"
    return str(cause)[:200]


def refresh(ctx, series_list):
    """Make written documents searchable (a snapshot reads its delta's)."""
    names = [docs.alias_name(s) for s in series_list]
    existing = [n for n in names if ctx.client.indices.exists_alias(name=n)]
    if existing:
        ctx.client.indices.refresh(index=",".join(existing))
