# Part of invenio-stats-dashboard (MIT License).
"""Shared pieces of the response-cache tests: a compute from real documents, its oracle.

``compute`` reads the aggregation documents the engine wrote (test family,
records delta of the added basis) and counts its calls in Redis (visible to
threads and child processes). ``expected_set`` builds the same shape from the
planned history (``agg_helpers.oracle``), never from what the code computed.
"""

import json

import redis
from flask import current_app

from agg_helpers import DELTA, read_all

COUNTER = "cachetest:computed"
RECORD_CATEGORIES = ("record-delta-category", "record-snapshot-category")


def counter_client():
    return redis.Redis.from_url(current_app.config["CACHE_REDIS_URL"])


def computed():
    """How many times :func:`compute` ran since :func:`reset_counter`."""
    return int(counter_client().get(COUNTER) or 0)


def reset_counter():
    counter_client().delete(COUNTER)


def series_set(points, year):
    """The §4.3 shape of one global series of yearly points ``{day: value}``."""
    data = [[day.strftime("%m-%d"), value] for day, value in sorted(points.items())]
    return {"global": {"records": [{"id": "global", "name": "Records", "type": "line",
                                    "valueType": "number", "year": year, "data": data}]}}


def compute(query, community_id, year, date_basis="added", components=None, delay=0):
    """A yearly series set from the aggregation documents in the cluster."""
    import time

    counter_client().incr(COUNTER)
    if delay:
        time.sleep(delay)
    points = {day: doc["records"]["added"]["metadata_only"]
              for (name, community, day), doc in read_all([DELTA]).items()
              if community == community_id and day.year == int(year)}
    return series_set(points, int(year))


def expected_set(expected_docs, community_id, year):
    """What :func:`compute` must give, from the oracle's documents."""
    points = {day: doc["records"]["added"]["metadata_only"]
              for (name, community, day), doc in expected_docs.items()
              if name == DELTA and community == community_id and day.year == int(year)}
    return series_set(points, int(year))


def loads(body):
    return json.loads(body)
