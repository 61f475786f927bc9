# Part of invenio-stats-dashboard (MIT License).
"""Community membership log: input resolution, backfill runs, status.

Every user input is resolved here before anything is written: unknown
community ids/slugs, unknown record ids and malformed dates raise
:class:`InvalidInputError` with a one-line message.
"""

import arrow
from invenio_search.proxies import current_search_client

from ..exceptions import InvalidInputError
from . import events_log as log
from .backfill import Scope, scan

DATE_FORMATS = ("YYYY-MM-DD", "YYYY-MM-DDTHH:mm:ss", "YYYY-MM-DDTHH:mm:ssZZ")


def parse_date(value, name="date"):
    """Strictly parse a user date (``YYYY-MM-DD`` or ISO date-time)."""
    if value in (None, ""):
        return None
    try:
        return arrow.get(str(value), list(DATE_FORMATS))
    except (arrow.parser.ParserError, ValueError):
        raise InvalidInputError(f"Malformed {name} '{value}' (expected YYYY-MM-DD).")


def resolve_community_ids(values):
    """Community UUIDs for ids or slugs (``global`` passes through)."""
    from invenio_communities.proxies import current_communities

    resolved, unknown = [], []
    record_cls = current_communities.service.record_cls
    for value in values or []:
        if value == log.GLOBAL:
            resolved.append(value)
            continue
        try:
            resolved.append(str(record_cls.pid.resolve(value).id))
        except Exception:
            unknown.append(value)
    if unknown:
        raise InvalidInputError(f"Unknown community id or slug: {', '.join(unknown)}.")
    return resolved


def resolve_record_ids(values):
    """Check that every record id is a published record (version)."""
    from invenio_rdm_records.proxies import current_rdm_records_service

    unknown = []
    for value in values or []:
        try:
            current_rdm_records_service.record_cls.pid.resolve(value)
        except Exception:
            unknown.append(value)
    if unknown:
        raise InvalidInputError(f"Unknown record id: {', '.join(unknown)}.")
    return list(values or [])


def build_scope(recids=None, community_ids=None, start_date=None, end_date=None):
    """Validated :class:`Scope` (raises before anything is written)."""
    start, end = parse_date(start_date, "start date"), parse_date(end_date, "end date")
    if start and end and start > end:
        raise InvalidInputError("The start date is after the end date.")
    return Scope(
        record_ids=resolve_record_ids(recids),
        community_ids=[c for c in resolve_community_ids(community_ids) if c != log.GLOBAL]
        + ([log.GLOBAL] if log.GLOBAL in (community_ids or []) else []),
        start_date=start.format("YYYY-MM-DD") if start else None,
        end_date=end.format("YYYY-MM-DD") if end else None,
    )


class CommunityRecordEventsService:
    """Queries over the membership log."""

    def __init__(self, client=None):
        """Use the app's search client by default."""
        self.client = client or current_search_client

    def events_per_community(self):
        """``{community_id: log documents}`` over the whole log (composite paging)."""
        counts, after = {}, None
        if not self.client.indices.exists_alias(name=log.alias_name()):
            return counts
        log.refresh(self.client)
        while True:
            agg = {"composite": {"size": 1000, "sources": [
                {"c": {"terms": {"field": "community_id"}}}]}}
            if after:
                agg["composite"]["after"] = after
            res = log.search_log({"size": 0, "aggs": {"by": agg}}, self.client)
            buckets = res["aggregations"]["by"]["buckets"]
            counts.update({b["key"]["c"]: b["doc_count"] for b in buckets})
            after = res["aggregations"]["by"].get("after_key")
            if not buckets or not after:
                return counts

    def filter_communities_by_activity(self, first_active=None, active_since=None,
                                       record_threshold=0, filter_priority=None):
        """Community ids (never ``global``) whose log history matches the filters.

        ``record_threshold`` counts distinct records ever added to the
        community (not log documents); communities are paged with a composite
        aggregation (no cap). First/last activity: earliest/latest ``event_date``.
        """
        if not self.client.indices.exists_alias(name=log.alias_name()):
            return []
        log.refresh(self.client)
        first = parse_date(first_active, "first-active date")
        since = parse_date(active_since, "active-since date")
        # Distinct records are counted exactly up to twice the threshold (counts
        # above it cannot fall below the threshold). OpenSearch reserves about
        # 256 KB per cardinality bucket whatever the threshold: small pages.
        threshold = record_threshold or 0
        aggs = {"first": {"min": {"field": "event_date"}},
                "last": {"max": {"field": "event_date"}}}
        if threshold:
            aggs["added"] = {"filter": {"term": {"event_type": log.ADDED}}, "aggs": {
                "records": {"cardinality": {
                    "field": "record_id",
                    "precision_threshold": min(40000, max(100, 2 * threshold))}}}}
        keep, after = [], None
        while True:
            agg = {"composite": {"size": 100 if threshold else 1000, "sources": [
                {"c": {"terms": {"field": "community_id"}}}]}, "aggs": aggs}
            if after:
                agg["composite"]["after"] = after
            res = log.search_log({"size": 0, "aggs": {"by": agg}},
                                 self.client)["aggregations"]["by"]
            for b in res["buckets"]:
                community = b["key"]["c"]
                if community == log.GLOBAL:
                    continue
                if threshold and b["added"]["records"]["value"] < threshold:
                    continue
                if first and arrow.get(b["first"]["value_as_string"]) > first.ceil("day"):
                    continue
                if since and arrow.get(b["last"]["value_as_string"]) < since.floor("day"):
                    continue
                keep.append(community)
            after = res.get("after_key")
            if not res["buckets"] or not after:
                return keep

    def status(self, scope, progress=None):
        """Per community (and ``global``): records, events, pairs to repair, estimates."""
        report = scan(scope, write=False, progress=progress)
        events = self.events_per_community()
        rows = {}
        for community, row in report.community_breakdown.items():
            pairs, missing = row["pairs"], row["records_missing_events"]
            rows[community] = {
                "records": row["records"],
                "events": events.get(community, 0),
                "records_missing_events": missing,
                "events_needed": row["events_needed"],
                "approximated": row["approximated"],
                "completeness": 1.0 if pairs == 0 else (pairs - missing) / pairs,
            }
        return report, rows


def generate(scope, progress=None):
    """Backfill ``scope``; returns ``(records processed, new events, existing events)``."""
    report = scan(scope, write=True, progress=progress)
    return report.records_processed, report.events_written, report.existing_events
