# Part of invenio-stats-dashboard (MIT License).
"""Synthetic view/download events: their shape, a planner, an oracle, indexing.

Used by ``usage-events generate`` (``UsageEventFactory``), the demo loader and
the tests. Events are shaped like the stock InvenioRDM 13 event builders'
output and go through invenio-stats' own pipeline: published to the
``stats-record-view`` / ``stats-file-download`` queues, then processed by the
configured ``EventsIndexer`` (robot filter, anonymiser with GeoIP country,
unique ids, our month routing), landing in the monthly
``events-stats-*-YYYY-MM`` indices.

The indexer merges events of one visitor on one item inside a 10-second
window (``double_click_window``); the planner never produces such pairs, so the
number of planned events is exactly the number of indexed documents, and
:func:`expected_counts` is an oracle computed without reading the index.
"""

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import arrow
from invenio_rdm_records.proxies import current_rdm_records_service
from invenio_search.engine import search
from invenio_search.proxies import current_search_client
from invenio_stats.proxies import current_stats

from ..search_indices.names import records_index
from ..search_indices.stock import create_stock_month
from ..services.enrichment import (
    MembershipIntervals,
    MetadataExtractor,
    records_metadata,
)

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


class _EventList:
    """Stands in for an invenio-queues queue: the indexer consumes a list of events."""

    def __init__(self, events, routing_key):
        self.events = events
        self.routing_key = routing_key  # names the indices

    def consume(self):
        """Copies of the events (the indexer's preprocessors change them)."""
        return (dict(e) for e in self.events)


def index_events(planned, chunk=5000, via_queue=True):
    """Run invenio-stats' configured ``EventsIndexer`` on the planned events.

    ``via_queue`` publishes them to the event queue first, the way live events
    arrive. Without it the indexer reads each chunk straight from memory: the
    same preprocessors, ids and monthly indices, without two Redis round trips
    per event, and in bulk requests of 500 instead of the indexer's 50 (for
    loading many events at once). Returns ``{event_type: indexed_count}`` as
    reported by the bulk helper.
    """
    indexed = {}
    for event_type, events in planned.items():
        total = 0
        event = current_stats.events[event_type]
        for i in range(0, len(events), chunk):
            batch = events[i:i + chunk]
            if not batch:
                continue
            if via_queue:
                current_stats.publish(event_type, [dict(e) for e in batch])
                ok, _errors = event.cls(**event.params).run()
            else:
                queue = _EventList(batch, event.params["queue"].routing_key)
                indexer = event.cls(**{**event.params, "queue": queue})
                ok, _errors = search.helpers.bulk(indexer.client, indexer.actionsiter(),
                                                  stats_only=True, chunk_size=500)
            total += ok
        indexed[event_type] = total
    return indexed


PUBLIC_IP_ADDRESSES = PUBLIC_IPS


class UsageEventFactory:
    """Plan, optionally enrich, and index synthetic usage events (``usage-events generate``).

    Each record gets ``events_per_record`` views, and a record with files one
    download per view, so the counts are known in advance.
    """

    def __init__(self, seed=0, subcount_configs=None):
        """``seed`` makes runs repeatable."""
        self.seed = seed
        self.subcount_configs = subcount_configs

    def make_view_event(self, target, when, session="visitor-0"):
        """One raw view event of ``target`` (a ``RecordTarget``) at ``when``."""
        return view_event(target, arrow.get(when).datetime, session)

    def make_download_event(self, target, when, file, session="visitor-0"):
        """One raw download event of ``file`` (dict with bucket_id, file_id, key, size)."""
        return download_event(target, arrow.get(when).datetime, file, session)

    def select_records(self, start_date=None, end_date=None, max_records=0):
        """Published, non-deleted record versions created in the range, oldest first."""
        created = {}
        if start_date:
            created["gte"] = arrow.get(start_date).isoformat()
        if end_date:
            created["lte"] = arrow.get(end_date).ceil("day").isoformat()
        query = {"range": {"created": created}} if created else {"match_all": {}}
        body = {"query": query, "_source": ["id"], "size": 500,
                "sort": [{"created": "asc"}, {"id": "asc"}]}
        resolve = current_rdm_records_service.record_cls.pid.resolve
        targets = []
        while True:
            hits = current_search_client.search(index=records_index(),
                                                body=body)["hits"]["hits"]
            for hit in hits:
                record = resolve(hit["_source"]["id"])
                if record.deletion_status.is_deleted:
                    continue
                targets.append(RecordTarget.from_record(record))
                if max_records and len(targets) >= max_records:
                    return targets
            if len(hits) < body["size"]:
                return targets
            body["search_after"] = hits[-1]["sort"]

    def generate_repository_events(self, start_date=None, end_date=None,
                                   event_start_date=None, event_end_date=None,
                                   events_per_record=5, max_records=0, enrich_events=False):
        """``{"record-view": [...], "file-download": [...]}`` for the selected records."""
        targets = self.select_records(start_date, end_date, max_records)
        start = arrow.get(event_start_date).datetime if event_start_date else None
        end = (arrow.get(event_end_date).ceil("day").datetime if event_end_date
               else datetime.now(timezone.utc))
        if start:  # an explicit window overrides the records' creation dates
            targets = [RecordTarget(t.recid, t.parent_recid, start, t.files) for t in targets]
        planned = plan_events(targets, per_record=events_per_record, start=start, end=end,
                              seed=self.seed, download_ratio=1.0)
        if enrich_events:
            self.enrich(planned)
        return planned

    def enrich(self, planned):
        """Add the subcount fields and ``community_ids`` at each event's instant."""
        recids = {e["recid"] for events in planned.values() for e in events}
        docs = records_metadata(recids)
        members = MembershipIntervals(recids)
        extractor = MetadataExtractor(self.subcount_configs or {})
        for events in planned.values():
            for event in events:
                if event["recid"] in docs:
                    event.update(extractor.extract_fields(docs[event["recid"]], event["recid"]))
                event["community_ids"] = members.at(event["recid"], event["timestamp"])

    def index_usage_events(self, planned, enriched=False):
        """Publish and index; returns ``{"indexed": n, "errors": m}``.

        Unenriched events simulate an instance before installation: months
        that do not exist yet are created with InvenioRDM's stock mapping, so
        the migration has legacy months to work on.
        """
        if not enriched:
            for stem, events in planned.items():
                for month in sorted({e["timestamp"][:7] for e in events}):
                    create_stock_month(stem, month)
        total = sum(len(events) for events in planned.values())
        indexed = sum(index_events(planned).values())
        return {"indexed": indexed, "errors": total - indexed}

    def generate_and_index_repository_events(self, dry_run=False, **options):
        """Generate, then index unless ``dry_run``; returns counts per type."""
        planned = self.generate_repository_events(**options)
        result = {"generated": {t: len(e) for t, e in planned.items()}, "indexed": 0, "errors": 0}
        if not dry_run:
            result.update(self.index_usage_events(planned, options.get("enrich_events")))
        return result

