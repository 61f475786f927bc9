# Part of invenio-stats-dashboard (MIT License).
"""``UsageEventFactory``: synthetic view/download events (``usage-events generate``).

A thin face over the planner the tests and the demo use
(``demo.usage_events``): events are shaped like the stock RDM 13 builders'
output and go through invenio-stats' own queue and indexer, so robot flags,
anonymisation, unique ids and our month routing all apply. Each record gets
``events_per_record`` views, and a record with files one download per view,
so the counts are known in advance.
"""

from datetime import datetime, timezone

import arrow
from invenio_rdm_records.proxies import current_rdm_records_service
from invenio_search.proxies import current_search_client
from ..search_indices.names import records_index
from ..search_indices.stock import create_stock_month

from ..demo.usage_events import (
    PUBLIC_IPS,
    RecordTarget,
    download_event,
    index_events,
    plan_events,
    view_event,
)
from ..services.enrichment import (
    MembershipIntervals,
    MetadataExtractor,
    records_metadata,
)

PUBLIC_IP_ADDRESSES = PUBLIC_IPS


class UsageEventFactory:
    """Plan, optionally enrich, and index synthetic usage events."""

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

