# Part of invenio-stats-dashboard (MIT License).
"""Redis response cache of the dashboard API: one entry per (community, year, query, basis).

Why it looks like this (api-and-cache.md §8, gaps 11–20 fixed):

* **Keys** are ``<STATS_CACHE_PREFIX>:<sha256>`` of upstream's request JSON
  plus the real ``date_basis``, the ``optimize`` flag and a *config version*
  (short hash of the subcount config, the layout and :data:`TRANSFORM_VERSION`):
  a change of any of them misses the old entries instead of serving another
  shape (gaps 12, 13). Old-version entries are removed by generation's cleanup.
* **Index**: keys are opaque, so every write also records readable metadata in
  the hash ``<prefix>:index`` (field = key) and the key in the set
  ``<prefix>:community:<id>``. Listing, clearing by pattern and invalidation
  read those (HSCAN/SMEMBERS), never ``KEYS`` (gaps 13, 20).
* **Values** are gzip-compressed orjson bytes (gap 15); readers get JSON bytes.
* **Stampede**: one computation per missing key. The first request takes the
  per-key lock (``SET NX PX`` with a renewed lease, :class:`~..utils.jobs.JobLock`),
  the others poll for the entry (gap 16). A killed computation's lock expires
  after one lease.
* **Invalidation at the source**: the aggregation runner calls
  :meth:`ResponseCache.invalidate` for every (community, year) it rewrote, so
  past years no longer depend on a 7-day flag and on scheduled generation
  (gap 14). A per-(community, year) generation counter makes a computation
  that started before the invalidation store nothing (no stale write-back).
* **Completeness gate** (§8.5): an entry is complete when the matching
  aggregator's bookmark reaches the year's end (yesterday for the current
  year). A community without source events never gets a bookmark (gap 19):
  the runner then leaves ``<id>_agg_empty_<aggregator>`` = the day it found
  nothing, which counts as the bookmark. Incomplete results are stored only
  for ``STATS_CACHE_INCOMPLETE_TTL`` seconds (so a page load burst computes
  once) and never count as generated.
"""

import gzip
import hashlib
import json
import re
import time
from datetime import date, datetime, timezone

import orjson
import redis
from flask import current_app

from ..utils.jobs import JobLock

#: Bump when the shape of a computed series set changes (part of the key version).
TRANSFORM_VERSION = 1
#: The four category queries generated per (community, year) (§8.3).
DEFAULT_CATEGORIES = ("usage-snapshot-category", "usage-delta-category",
                      "record-snapshot-category", "record-delta-category")
INDEX_SCAN_COUNT = 500

# Store only when nobody invalidated the (community, year) since the reader
# looked (KEYS: gen counter, entry, index hash, community set).
_STORE = """
local current = redis.call('get', KEYS[1]) or '0'
if current ~= ARGV[1] then return 0 end
if tonumber(ARGV[3]) > 0 then
  redis.call('set', KEYS[2], ARGV[2], 'EX', ARGV[3])
else
  redis.call('set', KEYS[2], ARGV[2])
end
redis.call('hset', KEYS[3], KEYS[2], ARGV[4])
redis.call('sadd', KEYS[4], KEYS[2])
return 1
"""


def _url(config, db_setting, default_db):
    """config.md §9: the override URL, else ``CACHE_REDIS_URL`` with another DB."""
    url = config.get("STATS_CACHE_REDIS_URL")
    if url and str(url) != "None":
        return str(url)
    base = (config.get("CACHE_REDIS_URL") or "redis://localhost:6379/0").rsplit("/", 1)[0]
    return f"{base}/{int(config.get(db_setting, default_db))}"


_CLIENTS = {}  # url -> client: one connection pool per process, not one per request


def shared_client(url):
    """A Redis client for ``url``, shared by the process (redis-py is thread-safe and
    resets its pool after a fork); connecting per request cost more than the GET."""
    client = _CLIENTS.get(url)
    if client is None:
        client = _CLIENTS.setdefault(url, redis.Redis.from_url(url))
    return client


def cache_client(config=None):
    """Redis of the response cache (``STATS_CACHE_REDIS_DB``, 7)."""
    return shared_client(_url(config or current_app.config, "STATS_CACHE_REDIS_DB", 7))


_VERSIONS = {}  # ids of the config values -> (the values, version)
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def _stable(value):
    """JSON stand-in for a config value that is not JSON, the same in every process.

    Subcount configs hold functions (``extract_affiliations_for_event``): their
    ``str()`` carries a memory address, which made every process (each web
    worker, the Celery worker, the CLI) compute its own version, so entries
    stored by one were never read by another.
    """
    if isinstance(value, (set, frozenset)):
        return sorted(map(repr, value))
    name = getattr(value, "__qualname__", None)
    if name is not None and (callable(value) or isinstance(value, type)):
        return f"{getattr(value, '__module__', '')}.{name}"
    return _ADDRESS.sub("", repr(value))


def config_version(config=None):
    """Short hash of what shapes an entry: subcounts, layout, metric registry, transform.

    Memoised on the identity of the three config values (kept referenced, so
    an id is never reused while memoised): serialising and hashing them cost
    about as much as the cache read of a request. Replacing a value (as
    ``app.config[...] = …`` does) gives a new version; mutating one in place
    is not seen — configuration is not mutated at run time.
    """
    config = config or current_app.config
    parts = (config.get("COMMUNITY_STATS_SUBCOUNTS"), config.get("STATS_DASHBOARD_LAYOUT"),
             config.get("STATS_DASHBOARD_COMPONENT_METRICS_REGISTRY"))
    ids = tuple(map(id, parts))
    memo = _VERSIONS.get(ids)
    if memo is not None and all(a is b for a, b in zip(memo[0], parts)):
        return memo[1]
    text = json.dumps([*parts, TRANSFORM_VERSION], sort_keys=True, default=_stable)
    version = hashlib.sha256(text.encode()).hexdigest()[:12]
    if len(_VERSIONS) > 64:  # configs come and go in tests only
        _VERSIONS.clear()
    _VERSIONS[ids] = (parts, version)
    return version


def category_names(config=None):
    """Queries generated per (community, year).

    ``STATS_CACHE_CATEGORIES``, else the ``STATS_QUERIES`` names ending in
    ``-category`` (upstream's rule; the four defaults until those are registered).
    """
    config = config or current_app.config
    if config.get("STATS_CACHE_CATEGORIES"):
        return tuple(config["STATS_CACHE_CATEGORIES"])
    queries = config.get("STATS_QUERIES") or {}
    names = [n for n in queries if n.endswith("-category")]
    return tuple(n for n in DEFAULT_CATEGORIES if n in names) + tuple(
        sorted(n for n in names if n not in DEFAULT_CATEGORIES)) if names else DEFAULT_CATEGORIES


def aggregator_for(query_name, date_basis="added"):
    """The aggregator whose bookmark gates ``query_name`` (None: not a series query)."""
    kind = "delta" if "delta" in query_name else "snapshot" if "snapshot" in query_name else None
    if kind is None:
        return None
    if query_name.startswith("usage-") or query_name.startswith("community-usage"):
        return f"community-usage-{kind}-agg"
    if "record" in query_name:
        return f"community-records-{kind}-{date_basis or 'added'}-agg"
    return None


def _today():
    return datetime.now(timezone.utc).date()


class ResponseCache:
    """The cache of one instance (cache DB, registry DB, prefix and version from config)."""

    def __init__(self, client=None, registry=None, config=None):
        """Bind to Redis; nothing is read yet."""
        self.config = config or current_app.config
        self.client = client or cache_client(self.config)
        if registry is None:
            from ..aggregations.runner import registry_client

            registry = registry_client()
        self.registry = registry
        self.prefix = self.config.get("STATS_CACHE_PREFIX") or "stats_dashboard"
        self.version = config_version(self.config)
        self.index_key = f"{self.prefix}:index"
        self.stats_key = f"{self.prefix}:stats"
        self._store = self.client.register_script(_STORE)

    # --- keys -------------------------------------------------------------------

    @property
    def ttl_seconds(self):
        """Entry lifetime (``STATS_CACHE_DEFAULT_TTL`` days; 0/None: no expiry)."""
        days = self.config.get("STATS_CACHE_DEFAULT_TTL")
        return int(float(days) * 86400) if days else 0

    def optimize_default(self):
        """``STATS_DASHBOARD_OPTIMIZE_DATA_SERIES`` (entries are keyed by it)."""
        return bool(self.config.get("STATS_DASHBOARD_OPTIMIZE_DATA_SERIES", True))

    def key(self, community_id, year, query_name, date_basis="added", optimize=None,
            components=None):
        """``<prefix>:<sha256>`` of upstream's request JSON plus basis, optimize, version
        and, when given, the layout components the entry is pruned for
        (``cache_generation.key_components``)."""
        optimize = self.optimize_default() if optimize is None else bool(optimize)
        payload = {"content_type": "application/json", "request_data": {
            "stat": query_name, "params": {
                "community_id": str(community_id), "start_date": f"{int(year)}-01-01",
                "end_date": f"{int(year)}-12-31", "date_basis": date_basis or "added"}},
            "optimize": optimize, "version": self.version}
        if components is not None:
            payload["components"] = sorted(components)
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
        return f"{self.prefix}:{digest}"

    def _community_set(self, community_id):
        return f"{self.prefix}:community:{community_id}"

    def _gen_key(self, community_id, year):
        return f"{self.prefix}:gen:{community_id}:{int(year)}"

    # --- read / write -------------------------------------------------------------

    def read(self, key):
        """The entry's JSON bytes or None."""
        return self._unpack(self.client.get(key))

    @staticmethod
    def _unpack(raw):
        return gzip.decompress(raw) if raw is not None else None

    def meta(self, key):
        """The index record of ``key`` (dict) or None."""
        raw = self.client.hget(self.index_key, key)
        return json.loads(raw) if raw else None

    def exists_complete(self, key):
        """Whether a complete entry is stored under ``key``."""
        meta = self.meta(key)
        return bool(meta and meta.get("complete") and self.client.exists(key))

    def store(self, community_id, year, query_name, date_basis, data, complete,
              optimize=None, generation=None, components=None):
        """Write an entry (atomic with its index records); False when invalidated meanwhile.

        ``generation`` is the (community, year) counter read before computing;
        None reads it now (no race to guard against).
        """
        key = self.key(community_id, year, query_name, date_basis, optimize, components)
        if generation is None:
            generation = self.generation(community_id, year)
        body = data if isinstance(data, bytes) else orjson.dumps(
            data, option=orjson.OPT_NAIVE_UTC | orjson.OPT_NON_STR_KEYS)
        packed = gzip.compress(body, compresslevel=6)
        ttl = self.ttl_seconds if complete else int(
            self.config.get("STATS_CACHE_INCOMPLETE_TTL", 300) or 0)
        if not complete and not ttl:
            return False
        meta = json.dumps({
            "community_id": str(community_id), "year": int(year), "category": query_name,
            "date_basis": date_basis or "added", "version": self.version,
            "optimize": self.optimize_default() if optimize is None else bool(optimize),
            "size": len(packed), "raw_size": len(body), "created": time.time(),
            "complete": bool(complete),
            "components": sorted(components) if components is not None else None},
            sort_keys=True)
        keys = [self._gen_key(community_id, year), key, self.index_key,
                self._community_set(community_id)]
        return bool(self._store(keys=keys, args=[generation, packed, ttl, meta]))

    def generation(self, community_id, year):
        """The (community, year) invalidation counter, as text."""
        value = self.client.get(self._gen_key(community_id, year))
        return value.decode() if value else "0"

    def _count(self, field):
        try:
            self.client.hincrby(self.stats_key, field, 1)
        except redis.RedisError:  # statistics never fail a request
            pass

    def _lookup(self, key):
        """GET ``key`` and count the lookup in one round trip (the hit path's only one)."""
        pipe = self.client.pipeline(transaction=False)
        pipe.get(key)
        pipe.hincrby(self.stats_key, "lookups", 1)
        raw, _ = pipe.execute(raise_on_error=False)
        if isinstance(raw, Exception):
            raise raw
        return self._unpack(raw)

    def counters(self):
        """``{hits, misses, computed, stored, waited}`` since the last clear.

        Hits are lookups that were not misses, plus entries found after a miss
        (stored by another request while this one waited for the lock).
        """
        raw = self.client.hgetall(self.stats_key)
        found = {k.decode(): int(v) for k, v in raw.items()}
        counts = {name: found.get(name, 0)
                  for name in ("misses", "computed", "stored", "waited")}
        hits = found.get("lookups", 0) - counts["misses"] + found.get("late_hits", 0)
        return {"hits": hits, **counts}

    # --- the API path --------------------------------------------------------------

    def get_or_create(self, community_id, year, query_name, date_basis, compute,
                      optimize=None, wait=None, components=None):
        """JSON bytes of the entry, computing it once when missing.

        ``compute()`` returns the series set. Concurrent misses of one key
        compute once: the lock holder computes and stores, the others poll
        for the entry (at most ``wait`` / ``STATS_CACHE_LOCK_WAIT`` seconds,
        then they compute without storing). Nothing is stored when
        ``compute`` raises.
        """
        key = self.key(community_id, year, query_name, date_basis, optimize, components)
        cached = self._lookup(key)
        if cached is not None:
            return cached
        self._count("misses")
        wait = float(self.config.get("STATS_CACHE_LOCK_WAIT", 120) if wait is None else wait)
        deadline = time.monotonic() + wait
        lock = JobLock(f"{key}", lease=self.config.get("STATS_CACHE_LOCK_LEASE") or None,
                       client=self.client, job="cache-compute")
        delay = 0.05
        while True:
            if lock.acquire():
                try:
                    cached = self.read(key)  # stored between our miss and the lock
                    if cached is not None:
                        self._count("late_hits")
                        return cached
                    return self._compute_and_store(community_id, year, query_name,
                                                   date_basis, compute, optimize, components)
                finally:
                    lock.release()
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)
            cached = self.read(key)
            if cached is not None:
                self._count("waited")
                return cached
            if time.monotonic() > deadline:  # the holder is slow: serve uncached
                return self._encode(compute())

    @staticmethod
    def _encode(data):
        return orjson.dumps(data, option=orjson.OPT_NAIVE_UTC | orjson.OPT_NON_STR_KEYS)

    def _compute_and_store(self, community_id, year, query_name, date_basis, compute,
                           optimize, components=None):
        generation = self.generation(community_id, year)
        complete = self.is_complete(community_id, year, query_name, date_basis)
        body = self._encode(compute())
        self._count("computed")
        if self.store(community_id, year, query_name, date_basis, body, complete, optimize,
                      generation, components):
            self._count("stored")
        return body

    # --- completeness gate (§8.5, gap 19) -------------------------------------------

    def is_complete(self, community_id, year, query_name, date_basis="added"):
        """Whether the aggregations behind the entry reach its year's end (or yesterday)."""
        aggregator = aggregator_for(query_name, date_basis)
        if aggregator is None:
            return True
        today = _today()
        if int(year) > today.year:
            return False
        need = date(int(year), 12, 31) if int(year) < today.year else date.fromordinal(
            today.toordinal() - 1)
        reached = self.aggregated_until(community_id, aggregator)
        return reached is not None and reached >= need

    def aggregated_until(self, community_id, aggregator):
        """The aggregator's bookmark day, else the day a run found no source events."""
        from ..aggregations.bookmarks import CommunityBookmarkAPI

        try:
            mark = CommunityBookmarkAPI(agg_type=aggregator).get_bookmark(community_id)
        except Exception:  # noqa: BLE001 - any lookup error counts as incomplete (§8.5)
            current_app.logger.warning("bookmark lookup failed", exc_info=True)
            return None
        if mark is not None:
            return mark.date()
        empty = self.registry.get(f"{community_id}_agg_empty_{aggregator}")
        return date.fromisoformat(empty.decode()) if empty else None

    # --- index, listing, invalidation -------------------------------------------------

    def entries(self, community_id=None, prune=True):
        """Index records of live entries (``key`` added); expired ones are pruned."""
        found = []
        if community_id is not None:
            members = sorted(self.client.smembers(self._community_set(community_id)))
            raw = self.client.hmget(self.index_key, members) if members else []
            pairs = list(zip(members, raw))
        else:
            pairs = list(self.client.hscan_iter(self.index_key, count=INDEX_SCAN_COUNT))
        for i in range(0, len(pairs), 500):
            batch = pairs[i:i + 500]
            pipe = self.client.pipeline(transaction=False)
            for key, _ in batch:
                pipe.pttl(key)
            ttls = pipe.execute()
            for (key, raw), ttl in zip(batch, ttls):
                key = key.decode() if isinstance(key, bytes) else key
                if raw is None or ttl == -2:
                    if prune:
                        self._forget([(key, json.loads(raw) if raw else {})])
                    continue
                meta = json.loads(raw)
                meta.update(key=key, ttl=(ttl / 1000 if ttl >= 0 else None))
                meta["age"] = time.time() - meta.get("created", time.time())
                found.append(meta)
        found.sort(key=lambda m: (m["community_id"] != "global", m["community_id"], m["year"],
                                  m["category"], m["date_basis"]))
        return found

    def _forget(self, items):
        """Delete entries and their index records; returns how many entries existed."""
        if not items:
            return 0
        pipe = self.client.pipeline(transaction=True)
        for key, meta in items:
            pipe.delete(key)
            pipe.hdel(self.index_key, key)
            pipe.srem(self._community_set(meta.get("community_id") or "-"), key)
        results = pipe.execute()
        return sum(results[0::3])

    def delete(self, entries):
        """Delete index records returned by :meth:`entries`; the count deleted."""
        return self._forget([(e["key"], e) for e in entries])

    def invalidate(self, community_id, years):
        """Delete every entry of ``community_id`` for ``years`` (all queries, bases, versions).

        Also bumps each (community, year) counter so that a computation
        already under way stores nothing. Returns the number of entries deleted.
        """
        years = {int(y) for y in years}
        if not years:
            return 0
        pipe = self.client.pipeline(transaction=False)
        for year in sorted(years):
            pipe.incr(self._gen_key(community_id, year))
            pipe.expire(self._gen_key(community_id, year), max(self.ttl_seconds, 86400) + 86400)
        pipe.execute()
        doomed = [e for e in self.entries(community_id) if e["year"] in years]
        return self.delete(doomed)

    def clear_all(self):
        """Delete every entry, index record, counter and compute lock of this prefix (SCAN)."""
        deleted = 0
        for key in self.client.scan_iter(match=f"{self.prefix}:*", count=1000):
            deleted += self.client.delete(key)
        for key in self.client.scan_iter(match=f"lock:{self.prefix}:*", count=1000):
            self.client.delete(key)
        return deleted

    def size_info(self):
        """Entry count and compressed/raw sizes from the index."""
        entries = self.entries()
        return {"entries": len(entries), "bytes": sum(e.get("size", 0) for e in entries),
                "raw_bytes": sum(e.get("raw_size", 0) for e in entries),
                "prefix": self.prefix, "version": self.version}


def invalidate_rewritten(pairs):
    """Drop the entries of every (community, year) an aggregation run rewrote.

    Called by the aggregation runner; a Redis failure is logged and left to
    the ``agg_updated_<year>`` flags (generation regenerates those years).
    """
    by_community = {}
    for community_id, year in pairs:
        by_community.setdefault(str(community_id), set()).add(int(year))
    if not by_community:
        return 0
    try:
        cache = ResponseCache()
        return sum(cache.invalidate(c, ys) for c, ys in sorted(by_community.items()))
    except redis.RedisError:
        current_app.logger.warning("response cache invalidation failed", exc_info=True)
        return 0
