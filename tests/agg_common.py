# Part of invenio-stats-dashboard (MIT License).
"""Small helpers the aggregation test histories share: a frozen clock, instants, readers.

The histories themselves (``aggregation_history``, ``agg_history``,
``agg_helpers``) stay apart; each builds its days and instants from
:func:`calendar` or :func:`instant` and drives the services under
:func:`travel`. Importing this module loads nothing of the code under test
(the oracle's own tests use it without services): :func:`series_hits`
imports what it reads with when called.
"""

from datetime import datetime, time, timedelta, timezone

import time_machine

STAMPS = ("timestamp", "updated_timestamp")


def travel(when):
    """The clock frozen at ``when`` (a context manager)."""
    return time_machine.travel(when, tick=False)


def instant(day, hours=0, minutes=0, seconds=0, millis=0):
    """An instant (UTC) on the date ``day``."""
    return (datetime.combine(day, time(0), tzinfo=timezone.utc)
            + timedelta(hours=hours, minutes=minutes, seconds=seconds, milliseconds=millis))


def calendar(d0):
    """``(day, at)`` of a history whose day 0 is ``d0``.

    ``day(n)`` is the date ``n`` days after ``d0``; ``at(n, hours, minutes,
    seconds, millis)`` an instant on it.
    """
    def day(n):
        return d0 + timedelta(days=n)

    def at(n, hours=0, minutes=0, seconds=0, millis=0):
        return instant(day(n), hours, minutes, seconds, millis)

    return day, at


def series_hits(name, query=None):
    """The search hits of series ``name``, searchable now (none before its alias exists)."""
    from invenio_search.engine import search
    from invenio_search.proxies import current_search_client

    from invenio_stats_dashboard.aggregations import documents as docs
    from invenio_stats_dashboard.aggregations.series import get

    alias = docs.alias_name(get(name))
    if not current_search_client.indices.exists_alias(name=alias):
        return
    current_search_client.indices.refresh(index=alias)
    yield from search.helpers.scan(current_search_client, index=alias,
                                   query={"query": query or {"match_all": {}}})


def without(doc, fields=STAMPS):
    """``doc`` without ``fields`` (its timestamps by default)."""
    return {k: v for k, v in doc.items() if k not in fields}


def without_timestamps(documents):
    """A mapping of documents, each without its timestamps."""
    return {key: without(doc) for key, doc in documents.items()}
