# Part of invenio-stats-dashboard (MIT License).
"""A small history across a New Year, aggregated, for the HTTP tests of the API.

Why its own history: the dashboard endpoint is about year blocks, so the
data must straddle two calendar years (day 0 is Dec 29 of last year, day 5
is Jan 3 of this one); and the expectations must be computable by hand from
what the test *did* — records published and removed, events emitted — so
they are independent of the aggregators and the transformer under test.

``EXPECTED`` below is that hand computation for community ``alpha`` (and
global), written down from the history, never from output.
"""

from datetime import date

from agg_common import calendar
from agg_history import IPS, Driver, emit_live, enable_dashboard, resolve
from agg_oracle import Event
from agg_run import aggregate

from invenio_stats.utils import get_geoip

from invenio_stats_dashboard.utils.usage_events import BROWSER_UA

YEAR = date.today().year - 1  # the first year; the second is YEAR + 1 (this year)
D0 = date(YEAR, 12, 29)
LAST_DAY = 5  # Jan 3 of YEAR + 1
day, at = calendar(D0)


def drive(identities, communities):
    """Publish, remove and view/download across the New Year; then aggregate.

    Returns the driver (records and membership history as done) and the
    planned usage events, for the aggregation oracle.
    """
    alpha, beta, secret = (communities[n].id for n in ("alpha", "beta", "secret"))
    for community in (alpha, beta, secret):
        enable_dashboard(community)
    d = Driver(identities, communities)
    d.publish(at(0, 10), "a1", community=alpha, files={"a.csv": b"a" * 100})
    d.publish(at(1, 10), "a2", community=alpha)
    d.publish(at(1, 11), "s1", community=secret, files={"s.txt": b"s" * 10},
              record_access="restricted", access="restricted")  # a restricted community
    # takes only restricted records
    d.publish(at(1, 12), "b1", community=beta)
    d.publish(at(3, 10), "a3", community=alpha, files={"c.pdf": b"c" * 50})  # Jan 1
    d.remove(at(4, 10), "a2", alpha)                                        # Jan 2
    rows = [  # (record, instant, kind, visitor, file)
        ("a1", at(1, 10, 30), "view", "v1", None),
        ("a1", at(1, 11, 30), "view", "v2", None),
        ("a1", at(2, 10), "download", "v1", "a.csv"),
        ("s1", at(2, 11), "view", "v5", None),
        ("b1", at(2, 12), "view", "v6", None),
        ("a1", at(3, 9), "view", "v3", None),
        ("a3", at(4, 11), "view", "v1", None),
        ("a3", at(4, 12), "download", "v2", "c.pdf"),
    ]
    planned = []
    for n, (name, when, kind, visitor, key) in enumerate(rows):
        record = resolve(d.ids[name])
        size = record.files[key].file.size if key else 0
        ip = IPS[n % len(IPS)]
        planned.append((Event(kind, when, record["id"], visitor, key=key, size=size,
                              country=get_geoip(ip)), BROWSER_UA, ip))
    emit_live(planned)
    aggregate(day(0), day(LAST_DAY))
    return d, [event for event, _, _ in planned]


def _d(n):
    return day(n).isoformat()


#: Hand-computed values of alpha and global: {(query, subcount, metric, series id):
#: {date: value}}. Deltas list their non-zero days (other days must be 0 or absent);
#: snapshots list every day from their first day to the last aggregated day.
EXPECTED = {
    "alpha": {
        ("record-delta-category", "global", "records", "global"):
            {_d(0): 1, _d(1): 1, _d(3): 1, _d(4): -1},
        ("record-delta-category", "global", "fileCount", "global"): {_d(0): 1, _d(3): 1},
        ("record-delta-category", "global", "dataVolume", "global"): {_d(0): 100, _d(3): 50},
        ("record-snapshot-category", "global", "records", "global"):
            {_d(0): 1, _d(1): 2, _d(2): 2, _d(3): 3, _d(4): 2, _d(5): 2},
        ("record-snapshot-category", "global", "fileCount", "global"):
            {_d(0): 1, _d(1): 1, _d(2): 1, _d(3): 2, _d(4): 2, _d(5): 2},
        ("record-snapshot-category", "global", "dataVolume", "global"):
            {_d(0): 100, _d(1): 100, _d(2): 100, _d(3): 150, _d(4): 150, _d(5): 150},
        ("usage-delta-category", "global", "views", "global"): {_d(1): 2, _d(3): 1, _d(4): 1},
        ("usage-delta-category", "global", "downloads", "global"): {_d(2): 1, _d(4): 1},
        ("usage-delta-category", "global", "dataVolume", "global"): {_d(2): 100, _d(4): 50},
        ("usage-snapshot-category", "global", "views", "global"):
            {_d(1): 2, _d(2): 2, _d(3): 3, _d(4): 4, _d(5): 4},
        ("usage-snapshot-category", "global", "downloads", "global"):
            {_d(2): 1, _d(3): 1, _d(4): 2, _d(5): 2},
    },
    "global": {
        ("record-snapshot-category", "global", "records", "global"):
            {_d(0): 1, _d(1): 4, _d(2): 4, _d(3): 5, _d(4): 5, _d(5): 5},
        ("usage-delta-category", "global", "views", "global"):
            {_d(1): 2, _d(2): 2, _d(3): 1, _d(4): 1},
    },
}


def is_delta(query):
    return "-delta-" in query
