# Part of invenio-stats-dashboard (MIT License).
"""The aggregation engine: spans, units, writing, bookmarks, locks — for every series.

A family (``records``, ``records_basis``, ``usage``, ``snapshots``) only
computes document bodies for days (``compute``) and says where a series
begins (``first_day``). Everything else is here and the same for all eight
series:

* a **span** is what one run does for one (series, community): from the
  bookmarked day (or the requested / first day) to today or the end date,
  cut into **units** of at most ``COMMUNITY_STATS_CATCHUP_INTERVAL`` days;
  a run normally does the first unit only (upstream's catch-up step), a
  catch-up run (``until_caught_up``) and a recompute (``ignore_bookmark``)
  the whole span;
* the **bookmark** (``stats-bookmarks-community``, id ``<series>_<community>``)
  is the last day written; every day before it is final, and the next run
  starts at it (it may have been today). It moves forward only after a
  write succeeded and its documents are searchable (X2); the refresh and
  the bookmark write of a unit's end wait for the commit of its run step
  (:mod:`.batch`: one per community's deltas, one per its snapshots), so
  that an hourly run does not pay two refreshes per unit. A recompute of
  days before it first lowers it to the first day rewritten — and the
  bookmark of the snapshot derived from the series too — so that an
  interrupted recompute is finished by the next run and the snapshots are
  re-derived from there;
* a **chain lock** in Redis (``agg:<delta series>:<community>``, renewed
  lease), held while a run plans and computes a delta and its snapshot for
  one community: two live runs never compute the same days, nor a
  snapshot while its delta is rewritten, and whoever holds it plans from
  the bookmarks as they are then; a killed worker's lock expires within
  one lease (fix G21);
* **writing** with deterministic ids (X1), adaptive bulk chunks, each failed
  chunk retried with its documents — none dropped (fix G20);
* a **guard** between days: stop requests, lost locks and the health check
  (throttled); a stop writes what was computed and leaves the bookmark at
  the last complete day;
* the **cache-invalidation** years (every year a unit wrote, fix G23).
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
from .batch import Batch, Marks  # noqa: F401 - Batch: the runner's step
from .bookmarks import CommunityBookmarkAPI
from .series import SERIES, get
from .state import AggregationState

#: family module per (family, kind, basis), relative to this package (an
#: absolute module name also works); records deltas and snapshots of the
#: created/published bases have a module of their own (R5).
FAMILIES = {
    ("records", "delta", "added"): ".records",
    ("records", "delta", "created"): ".records_basis",
    ("records", "delta", "published"): ".records_basis",
    ("records", "snapshot", "added"): ".snapshots",
    ("records", "snapshot", "created"): ".records_basis",
    ("records", "snapshot", "published"): ".records_basis",
    ("usage", "delta", None): ".usage",
    ("usage", "snapshot", None): ".snapshots",
}
RETRIES = 3
#: statuses worth asking again (busy node, gateway, unavailable; N/A = no answer)
RETRYABLE = {429, 502, 503, 504, "N/A"}
GUARD_SECONDS = 1.0  # stop requests and locks are checked at most this often
HEALTH_SECONDS = 10.0  # the health check (two cluster requests) at most this often
#: Computed days are written, refreshed and bookmarked together: at most this many,
#: or after this many seconds. A refresh and a bookmark per bulk chunk cost more
#: than the computation of a quiet community's year.
FLUSH_DAYS, FLUSH_SECONDS = 366, 30.0


def family(series):
    """The module computing ``series``."""
    return importlib.import_module(FAMILIES[(series.family, series.kind, series.basis)],
                                   __package__)


class ClusterUnavailableError(StatsDashboardError):
    """The search cluster does not answer (or keeps refusing): the whole run stops."""


def unavailable(exc):
    """Whether ``exc`` says the cluster cannot be used now (not a problem of one unit)."""
    if isinstance(exc, ClusterUnavailableError):
        return True
    if isinstance(exc, (search.exceptions.ConnectionError,
                        search.exceptions.ConnectionTimeout)):
        return True
    return isinstance(exc, search.exceptions.TransportError) and \
        getattr(exc, "status_code", None) in RETRYABLE


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
        self.chunk = Chunking(config)
        when = now or datetime.now(timezone.utc)
        if isinstance(when, str):
            when = datetime.fromisoformat(when)
        self.now = when.strftime("%Y-%m-%dT%H:%M:%S")
        self.today = when.date()
        self.state = AggregationState(self.client)
        self.marks = Marks(self.client)  # bookmarks (cached for the chains the run holds)
        self._aliases = set()  # aliases known to exist
        self._chains = {}  # community -> what its held chain's series share (chain_memo)

    def open_chain(self, community_id):
        """Start a community's chain: :meth:`chain_memo` keeps values until :meth:`close_chain`."""
        self._chains[community_id] = {}

    def close_chain(self, community_id):
        """End a community's chain: its memo is dropped (the next run reads afresh)."""
        self._chains.pop(community_id, None)

    def chain_memo(self, community_id):
        """A dict the series of a community's open chain share, or None outside a chain.

        For inputs read once per chain instead of once per series (e.g. the
        member set of the created/published bases); a value kept must stay
        correct for every series of the chain.
        """
        return self._chains.get(community_id)

    def alias_exists(self, alias):
        """Whether ``alias`` exists; a yes is kept for the run (an alias is not
        removed while a run writes behind it), saving a request per unit."""
        if alias not in self._aliases and self.client.indices.exists_alias(name=alias):
            self._aliases.add(alias)
        return alias in self._aliases

    def bookmarks(self, series):
        """The bookmark store of ``series``."""
        return CommunityBookmarkAPI(self.client, series.name)

    def bookmark(self, series, community_id):
        """The bookmarked day of ``(series, community)`` or None."""
        return self.marks.get(series, community_id)

    def get_document(self, series, community_id, day):
        """The stored document of ``series`` for ``(community, day)``, or None."""
        found = self.client.get(index=docs.index_name(series, day),
                                id=docs.doc_id(community_id, day), ignore=[404])
        return found["_source"] if found.get("found") else None

    def iter_documents(self, series, community_id, first=None, last=None, page=500):
        """Stored documents of ``(series, community)`` in day order (``search_after``)."""
        alias = docs.alias_name(series)
        if not self.alias_exists(alias):
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

    def last_document_day(self, series, community_id):
        """The newest stored day of ``(series, community)``, or None."""
        alias = docs.alias_name(series)
        if not self.alias_exists(alias):
            return None
        res = self.client.search(index=alias, body={
            "size": 0, "query": {"term": {"community_id": community_id}},
            "aggs": {"last": {"max": {"field": series.date_field}}}})
        value = res["aggregations"]["last"].get("value_as_string")
        return docs.as_day(value) if value else None


class Chunking:
    """Adaptive bulk size (config.md §11.1): grows after a success, shrinks on 413."""

    def __init__(self, config):
        """Sizes from ``COMMUNITY_STATS_*_CHUNK_SIZE`` and factors."""
        self.min = max(1, int(config.get("COMMUNITY_STATS_MIN_CHUNK_SIZE", 1)))
        self.max = max(self.min, int(config.get("COMMUNITY_STATS_MAX_CHUNK_SIZE", 100)))
        self.size = min(self.max, max(self.min, int(
            config.get("COMMUNITY_STATS_INITIAL_CHUNK_SIZE", 50))))
        self.grow = float(config.get("COMMUNITY_STATS_CHUNK_GROWTH_FACTOR", 1.05))
        self.shrink = float(config.get("COMMUNITY_STATS_CHUNK_REDUCTION_FACTOR", 0.7))
        self.timeout = int(config.get("COMMUNITY_STATS_BULK_INDEX_TIMEOUT", 300))

    def succeeded(self):
        """One more than the truncated product, so small sizes grow too."""
        self.size = min(self.max, max(int(self.size * self.grow), self.size + 1))

    def too_large(self):
        """A 413: smaller requests from now on."""
        self.size = max(self.min, int(self.size * self.shrink))


@dataclass
class Unit:
    """Days ``first``..``last`` of one series for one community.

    ``lower`` (first unit of a recompute) lowers the bookmarks to ``first``
    before anything is written; ``final_mark`` (last unit of a span) is the
    bookmark the span found: a completed span never leaves the bookmark
    below it (a recompute of old days keeps the later days valid).
    ``bookmark`` is False for a recompute that starts after the bookmark:
    the days between are not written, so the bookmark must not pass them.
    """

    series: object
    community_id: str
    first: object
    last: object
    lower: bool = False
    final_mark: object = None
    bookmark: bool = True  # False: a range detached from the bookmark (never moves it)

    @property
    def days(self):
        """The unit's days, in order."""
        return docs.days(self.first, self.last)

    @property
    def label(self):
        """``<series> <community> <first>..<last>`` for logs and progress."""
        return f"{self.series.name} {self.community_id} {self.first}..{self.last}"


@dataclass
class UnitResult:
    """What a unit did."""

    unit: Unit
    written: int = 0
    last_day: object = None
    stopped: str | None = None
    error: str | None = None
    unavailable: bool = False  # the error says the cluster cannot be used
    years: set = field(default_factory=set)
    seconds: float = 0.0

    @property
    def completed(self):
        """Every day of the unit was written."""
        return self.last_day == self.unit.last and not (self.stopped or self.error)


def plan(ctx, series, community_id, start_date=None, end_date=None, ignore_bookmark=False):
    """The units from where ``series`` must start for a community to its end (``[]``: none).

    First day: the bookmark (re-done: it may be today), unless
    ``ignore_bookmark``; else ``start_date`` (never before the series
    begins); else where the series begins. Last day: ``end_date`` or today —
    for a snapshot recompute always today, so that everything derived from
    the rewritten days is re-derived — and never past the delta's bookmark.
    The runner does the first unit (a catch-up step) or all of them
    (catch-up, recompute: ``units[0].lower``).
    """
    mark = ctx.bookmark(series, community_id)
    if mark is not None and not ignore_bookmark:
        first = mark
    else:
        begins = family(series).first_day(ctx, series, community_id)
        if begins is None:
            return []
        first = max(docs.as_day(start_date), begins) if start_date else begins
    recompute = ignore_bookmark and mark is not None and first < mark
    detached = ignore_bookmark and mark is not None and first > mark
    dirty = getattr(family(series), "dirty_from", None)  # optional family hook: late data
    if dirty and mark is not None and not ignore_bookmark:
        changed = dirty(ctx, series, community_id, mark)
        if changed is not None and changed < first:
            first, recompute = changed, True
    last = ctx.today
    if end_date and not (ignore_bookmark and not series.is_delta):
        last = min(docs.as_day(end_date), ctx.today)
    if series.depends_on:
        delta = get(series.depends_on)
        cap = ctx.bookmark(delta, community_id) or ctx.last_document_day(delta, community_id)
        if cap is None:
            return []
        last = min(last, cap)
    if last < first:
        return []
    units, day = [], first
    while day <= last:
        end = min(last, day + (ctx.catchup_days - 1) * docs.DAY)
        units.append(Unit(series, community_id, day, end, bookmark=not detached))
        day = end + docs.DAY
    units[0].lower = recompute
    if mark is not None:
        units[-1].final_mark = mark
    return units


def chains(series_list):
    """``series_list`` grouped by chain (a delta, then its snapshot), in order."""
    groups = {}
    for series in series_list:
        groups.setdefault(series.depends_on or series.name, []).append(series)
    return list(groups.values())


def hold(series, community_id):
    """The chain lock of ``(series, community)``, taken — or None when another run has it."""
    name = f"agg:{series.depends_on or series.name}:{community_id}"
    lock = JobLock(name, lease=lease_seconds(), job="aggregation")
    return lock if lock.acquire() else None


def dependents(series):
    """The series derived from ``series`` (its snapshot)."""
    return [s for s in SERIES if s.depends_on == series.name]


class Guard:
    """Whether a unit must stop now: stop requests, the lock, the health check.

    Checked between days, at most every :data:`GUARD_SECONDS` (the health
    check every :data:`HEALTH_SECONDS`): a stop request costs a Redis read,
    the health check two cluster requests.
    """

    def __init__(self, stop=None, health=None):
        """``stop() -> reason|None``; ``health() -> {is_healthy, reason}``."""
        self.stop, self.health = stop, health
        self._checked = self._health_checked = float("-inf")

    def reason(self, lock=None, force=False):
        """Why to stop, or None."""
        now = time.monotonic()
        if lock is not None and lock.lost.is_set():
            return f"lost lock {lock.name} (lease expired or taken over)"
        if not force and now - self._checked < GUARD_SECONDS:
            return None
        self._checked = now
        why = self.stop() if self.stop else None
        if why or not self.health or now - self._health_checked < HEALTH_SECONDS:
            return why  # throttled even when forced: one per unit would cost two
            # cluster requests per (series, community) of every hourly run
        self._health_checked = now
        check = self.health()
        return None if check["is_healthy"] else f"health check: {check['reason']}"


def run_unit(ctx, unit, lock, update_bookmark=True, guard=None, progress=None, batch=None):
    """Compute and write one unit; ``lock`` is its chain lock (:func:`hold`), held.

    Returns a :class:`UnitResult`. Errors are caught and reported in it
    (``error``, ``unavailable``): what was written before them stays, with
    the bookmark at the last complete day. With a ``batch``
    (:class:`~.batch.Batch`) the last refresh and the bookmark the unit
    earns wait for the caller's ``batch.commit()`` (one per run step, not
    per unit); without one the unit commits them itself before returning.
    """
    started = time.monotonic()
    result = UnitResult(unit)
    guard = guard or Guard()
    own = batch is None
    batch = Batch(ctx) if own else batch
    try:
        why = guard.reason(lock, force=True)
        if why:
            result.stopped = why
            return result
        _lower_bookmarks(ctx, unit, update_bookmark)
        _compute_and_write(ctx, unit, result, update_bookmark, guard, lock, progress, batch)
        if result.completed and update_bookmark and unit.bookmark:
            mark = max(unit.final_mark or unit.last, unit.last)
            batch.bookmark(unit.series, unit.community_id, mark, lock)
        if own:
            batch.commit()
    except Exception as exc:  # noqa: BLE001 - reported; the runner decides what follows
        current_app.logger.warning("aggregation unit %s failed", unit.label, exc_info=True)
        result.error = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
        result.unavailable = unavailable(exc)
    finally:
        result.seconds = round(time.monotonic() - started, 3)
    return result


def _lower_bookmarks(ctx, unit, update_bookmark):
    """Before rewriting days: no bookmark may promise them valid (own and derived)."""
    series, community_id = unit.series, unit.community_id
    targets = dependents(series) + ([series] if unit.lower and update_bookmark else [])
    for target in targets:
        mark = ctx.bookmark(target, community_id)
        if mark is not None and mark > unit.first:
            ctx.marks.set(target, community_id, unit.first)


def _compute_and_write(ctx, unit, result, update_bookmark, guard, lock, progress, batch):
    series, community_id = unit.series, unit.community_id
    pending, total = [], len(unit.days)
    flushed = time.monotonic()
    for n, (day, body) in enumerate(family(series).compute(ctx, series, community_id,
                                                           unit.days), start=1):
        pending.append((day, docs.stamp(series, community_id, day, body, ctx.now)))
        if len(pending) >= FLUSH_DAYS or time.monotonic() - flushed >= FLUSH_SECONDS:
            _flush(ctx, unit, pending, result, update_bookmark, batch, lock)
            flushed = time.monotonic()
        if progress:
            progress(unit, n, total)
        why = guard.reason(lock) if n < total else None
        if why:
            result.stopped = why
            break
    if pending:
        _flush(ctx, unit, pending, result, update_bookmark, batch, lock)


def _flush(ctx, unit, pending, result, update_bookmark, batch, lock):
    """Write ``pending``; make it searchable and move the bookmark past it (``batch``).

    A flush inside the unit (a long catch-up, or a stop) commits at once:
    the bookmark keeps up with the work. The unit's last flush leaves the
    refresh to the batch's commit, with the bookmark :func:`run_unit` adds.
    """
    series, community_id = unit.series, unit.community_id
    actions = [{"_op_type": "index", "_index": docs.index_name(series, day),
                "_id": docs.doc_id(community_id, day), "_source": body}
               for day, body in pending]
    result.written += write(ctx, actions, series.name)
    days = [day for day, _ in pending]
    pending.clear()
    batch.written({docs.index_name(series, day) for day in days})
    result.years.update(day.year for day in days)
    result.last_day = days[-1]
    if days[-1] < unit.last:  # the end: run_unit
        if update_bookmark and unit.bookmark:
            batch.bookmark(series, community_id, days[-1], lock)
        batch.commit()  # refresh first: readers see what the bookmark says


def write(ctx, actions, what="aggregation"):
    """Bulk-index ``actions`` in adaptive chunks; returns the number written.

    A chunk refused as too large (413) is split; documents that fail are
    retried with their own bodies (never a half-consumed generator, G20).
    Lasting failures raise: :class:`ClusterUnavailableError` when the
    cluster is busy or unreachable, :class:`StatsDashboardError` otherwise.
    """
    written, queue, attempt = 0, [], 0
    for i in range(0, len(actions), ctx.chunk.size):
        queue.append(actions[i:i + ctx.chunk.size])
    while queue:
        batch = queue.pop(0)
        ok, errors = search.helpers.bulk(
            ctx.client, batch, chunk_size=len(batch), max_chunk_bytes=100 * 2**20,
            raise_on_error=False, raise_on_exception=False, refresh=False,
            request_timeout=ctx.chunk.timeout)
        written += ok
        if not errors:
            ctx.chunk.succeeded()
            continue
        infos = [next(iter(e.values())) for e in errors]
        failed = {info.get("_id") for info in infos}
        retry = [a for a in batch if a["_id"] in failed]
        statuses = {info.get("status") for info in infos}
        if 413 in statuses and len(retry) > 1:
            ctx.chunk.too_large()
            half = len(retry) // 2
            queue[:0] = [retry[:half], retry[half:]]
            continue
        attempt += 1
        if attempt > RETRIES or not statuses <= RETRYABLE:
            cls = ClusterUnavailableError if statuses <= RETRYABLE else StatsDashboardError
            raise cls(f"{len(retry)} {what} documents could not be written: "
                      f"{_reason(infos[0])}")
        time.sleep(0.5 * 2 ** (attempt - 1))
        queue.insert(0, retry)
    return written


def _reason(info):
    cause = info.get("error")
    if isinstance(cause, dict):
        return f"{info.get('status')} {cause.get('type')}: {cause.get('reason')}"
    return f"{info.get('status')} {str(cause)[:200]}"
