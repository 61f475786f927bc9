# Part of invenio-stats-dashboard (MIT License).
"""Legacy view/download events with controlled timestamps (tests and demo).

Events are shaped like the stock InvenioRDM 13 event builders' output and go
through invenio-stats' own pipeline: published to the ``stats-record-view`` /
``stats-file-download`` queues, then processed by the configured
``EventsIndexer`` (robot filter, anonymiser with GeoIP country, unique ids),
landing in the stock monthly ``events-stats-*-YYYY-MM`` indices.

The indexer merges events of one visitor on one item inside a 10-second
window (``double_click_window``); the planner never produces such pairs, so the
number of planned events is exactly the number of indexed documents, and
:func:`expected_counts` is an oracle computed without reading the index.
"""

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from invenio_stats.proxies import current_stats

BROWSER_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0 Safari/537.36"
)
#: Public addresses of several countries, so the GeoIP lookup yields a country.
PUBLIC_IPS = ["8.8.8.8", "81.2.69.142", "130.237.0.1", "193.0.6.139",
              "203.0.113.0", "141.20.1.1", "129.187.254.49", "131.111.8.46"]
REFERRERS = [None, "https://www.google.com/", "https://scholar.google.com/",
             "https://twitter.com/"]
DOUBLE_CLICK_WINDOW = 10


@dataclass
class RecordTarget:
    """What an event needs to know about a published record version."""

    recid: str
    parent_recid: str
    created: datetime
    files: list = field(default_factory=list)  # dicts: bucket_id, file_id, key, size

    @classmethod
    def from_record(cls, record, created=None):
        """Build from an RDM record API object (no service read, no stats lookups)."""
        files = []
        if record.files.enabled:
            for key, rf in record.files.items():
                files.append({
                    "bucket_id": str(record.bucket_id),
                    "file_id": str(rf.file.file_id),
                    "key": key,
                    "size": rf.file.size,
                })
        when = created or record.created.replace(tzinfo=timezone.utc)
        return cls(record["id"], record.parent["id"], when.astimezone(timezone.utc), files)

    @classmethod
    def from_result(cls, item, created=None):
        """Build from a record service result item."""
        return cls.from_record(item._record, created)


def view_event(target, when, session, referrer=None, ip_address=PUBLIC_IPS[0]):
    """A raw view event as the stock RDM 13 builder emits it (naive UTC timestamp)."""
    return {"timestamp": when.astimezone(timezone.utc).replace(tzinfo=None).isoformat(),
            "recid": target.recid, "parent_recid": target.parent_recid, "referrer": referrer,
            "via_api": False, "ip_address": ip_address, "user_agent": BROWSER_UA,
            "user_id": "", "session_id": session}


def download_event(target, when, file, session, **extra):
    """A raw download event of ``file`` (dict with bucket_id, file_id, key, size)."""
    return {**view_event(target, when, session, **extra), "bucket_id": file["bucket_id"],
            "file_id": file["file_id"], "file_key": file["key"], "size": file["size"]}


def plan_events(targets, per_record, start=None, end=None, seed=0,
                download_ratio=0.5, visitors=200):
    """Plan view and download events for ``targets``.

    Each record gets ``per_record`` views at random instants between its
    creation (or ``start``) and ``end`` (default now); each view of a record
    with files is followed by a download with probability ``download_ratio``.
    Returns ``{"record-view": [...], "file-download": [...]}`` of raw events.
    """
    rng = random.Random(seed)
    end = end or datetime.now(timezone.utc)
    seen = set()
    planned = {"record-view": [], "file-download": []}

    def _unique(item_key, session, when):
        key = (item_key, session, int(when.timestamp()) // DOUBLE_CLICK_WINDOW)
        if key in seen:
            return False
        seen.add(key)
        return True

    for target in targets:
        lo = max(target.created, start) if start else target.created
        span = (end - lo).total_seconds()
        if span <= 0:
            continue
        for _ in range(per_record):
            when = lo + timedelta(seconds=rng.uniform(0, span))
            session = f"visitor-{rng.randrange(visitors)}"
            extra = {"referrer": rng.choice(REFERRERS), "ip_address": rng.choice(PUBLIC_IPS)}
            if _unique(f"view-{target.recid}", session, when):
                planned["record-view"].append(view_event(target, when, session, **extra))
            if target.files and rng.random() < download_ratio:
                f = rng.choice(target.files)
                dl_when = min(when + timedelta(seconds=rng.randint(5, 600)), end)
                if _unique(f"dl-{f['bucket_id']}-{f['file_id']}", session, dl_when):
                    planned["file-download"].append(
                        download_event(target, dl_when, f, session, **extra))
    return planned


def expected_counts(planned):
    """Oracle: documents per (event type, ``YYYY-MM``) the pipeline must produce."""
    counts = Counter()
    for event_type, events in planned.items():
        for event in events:
            counts[(event_type, event["timestamp"][:7])] += 1
    return counts


def index_events(planned, chunk=5000):
    """Publish the planned events and run invenio-stats' indexer on them.

    Returns ``{event_type: indexed_count}`` as reported by the bulk helper.
    """
    indexed = {}
    for event_type, events in planned.items():
        total = 0
        for i in range(0, len(events), chunk):
            batch = events[i:i + chunk]
            if not batch:
                continue
            current_stats.publish(event_type, [dict(e) for e in batch])
            event = current_stats.events[event_type]
            ok, _errors = event.cls(**event.params).run()
            total += ok
        indexed[event_type] = total
    return indexed
