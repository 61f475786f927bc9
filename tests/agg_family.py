# Part of invenio-stats-dashboard (MIT License).
"""A test-only family for the records series of the added basis (engine tests).

The engine is family-independent; this family makes its tests independent of
the real families' progress. It reads the real membership log:

* delta of day D: ``records.added.metadata_only`` = log documents of the
  community of type ``added`` in ``[D, D+1)``, ``removed`` likewise;
* snapshot of day D: the previous snapshot plus the day's delta (read back
  from the delta documents, which the engine must have made searchable); its
  first day is the real snapshot family's (the delta's first document).

``AGG_TEST_FAMILY_DELAY`` (config, seconds per day) slows it down so that
kills and concurrent runs land mid-run; every ``compute`` records its span
(process, start, end) in Redis so tests can check that no unit ran twice at
once.
"""

import json
import os
import time

import redis
from flask import current_app

from invenio_stats_dashboard.aggregations import documents as docs
from invenio_stats_dashboard.aggregations import engine, snapshots
from invenio_stats_dashboard.aggregations.series import get
from invenio_stats_dashboard.exceptions import DeltaDataGapError
from invenio_stats_dashboard.services import events_log as log

SERIES = ("community-records-delta-added-agg", "community-records-snapshot-added-agg")
SPANS = "aggtest:spans"
#: The records this family counts (in Redis, so child processes see them too): the
#: engine tests' own history. Other test modules publish records into the same log
#: (``global``, the shared communities), today or under time travel; counting them
#: would make these tests depend on which modules ran before.
RECORDS = "aggtest:records"
KEYS = (("records", "delta", "added"), ("records", "snapshot", "added"))


def register(setter=None):
    """Point the engine at this module for the two series (``setter(dict, key, value)``)."""
    setter = setter or (lambda d, k, v: d.__setitem__(k, v))
    for key in KEYS:
        setter(engine.FAMILIES, key, __name__)


def spans_client():
    return redis.Redis.from_url(current_app.config["CACHE_REDIS_URL"])


def count_only(record_ids, replace=True):
    """Count only ``record_ids`` from now on (``replace=False``: these too)."""
    client = spans_client()
    if replace:
        client.delete(RECORDS)
    if record_ids:
        client.sadd(RECORDS, *record_ids)


def _scope(community_id):
    """The log filter of a community, restricted to :data:`RECORDS` when set."""
    filters = [{"term": {"community_id": community_id}}]
    ids = sorted(m.decode() for m in spans_client().smembers(RECORDS))
    if ids:
        filters.append({"terms": {"record_id": ids}})
    return filters


def first_day(ctx, series, community_id):
    if series.is_delta:
        if not ctx.client.indices.exists_alias(name=log.alias_name()):
            return None
        res = ctx.client.search(index=log.alias_name(), body={
            "size": 0, "query": {"bool": {"filter": _scope(community_id)}},
            "aggs": {"first": {"min": {"field": "event_date"}}}})
        value = res["aggregations"]["first"].get("value_as_string")
        return docs.as_day(value) if value else None
    return snapshots.first_day(ctx, series, community_id)  # its delta's first document


def compute(ctx, series, community_id, days):
    started = time.time()
    try:
        yield from (_delta if series.is_delta else _snapshot)(ctx, series, community_id, days)
    finally:
        spans_client().rpush(SPANS, json.dumps({
            "chain": series.depends_on or series.name, "series": series.name,
            "community": community_id, "first": days[0].isoformat(),
            "last": days[-1].isoformat(), "pid": os.getpid(), "start": started,
            "end": time.time()}))


def _delay():
    return float(current_app.config.get("AGG_TEST_FAMILY_DELAY") or 0)


def _split(n):
    return {"metadata_only": n, "with_files": 0}


def _delta(ctx, series, community_id, days):
    start, _ = docs.window(days[0])
    _, end = docs.window(days[-1])
    res = ctx.client.search(index=log.alias_name(), body={
        "size": 0, "query": {"bool": {"filter": [
            *_scope(community_id), {"range": {"event_date": {"gte": start, "lt": end}}}]}},
        "aggs": {"days": {"date_histogram": {
            "field": "event_date", "calendar_interval": "day", "time_zone": "UTC"},
            "aggs": {"types": {"terms": {"field": "event_type"}}}}}})
    counts = {}
    for bucket in res["aggregations"]["days"]["buckets"]:
        day = docs.as_day(bucket["key_as_string"])
        for t in bucket["types"]["buckets"]:
            counts[(day, t["key"])] = t["doc_count"]
    delay = _delay()
    for day in days:
        if delay:
            time.sleep(delay)
        yield day, {"records": {"added": _split(counts.get((day, "added"), 0)),
                                "removed": _split(counts.get((day, "removed"), 0))}}


def _snapshot(ctx, series, community_id, days):
    delta = get(series.depends_on)
    previous = ctx.get_document(series, community_id, days[0] - docs.DAY)
    if previous is None and days[0] != first_day(ctx, series, community_id):
        raise DeltaDataGapError(f"no snapshot before {days[0]} for {community_id}")
    total = previous["total_records"]["metadata_only"] if previous else 0
    deltas = {docs.as_day(d["period_start"]): d["records"]
              for d in ctx.iter_documents(delta, community_id, days[0], days[-1])}
    delay = _delay()
    for day in days:
        if delay:
            time.sleep(delay)
        if day not in deltas:
            raise DeltaDataGapError(f"no delta on {day} for {community_id}")
        total += deltas[day]["added"]["metadata_only"] - deltas[day]["removed"]["metadata_only"]
        yield day, {"total_records": _split(total)}
