# Part of invenio-stats-dashboard (MIT License).
"""``CommunityStatsService``: the extension's main service (python-api.md §4.1).

The membership-log backfill and the aggregations (run, read, status,
bookmarks, locks); the logic lives in the modules each method names.
"""

from invenio_search.proxies import current_search_client

from . import community_events as ce
from .backfill import scan


class CommunityStatsService:
    """Statistics operations for all communities and ``global``."""

    def __init__(self, app=None):
        """Bind to the app (the search client is resolved lazily)."""
        self.app = app

    @property
    def client(self):
        """The search client."""
        return current_search_client

    def count_records_needing_events(self, recids=None, community_ids=None,
                                     start_date=None, end_date=None, progress=None):
        """Dry run of the backfill: what is missing from the log."""
        scope = ce.build_scope(recids, community_ids, start_date, end_date)
        report = scan(scope, write=False, progress=progress)
        return {
            "total_records": report.total_records,
            "records_needing_events": report.records_needing_events,
            "total_events_needed": report.events_needed,
            "community_breakdown": {
                c: row["events_needed"] for c, row in report.community_breakdown.items()
                if row["events_needed"]
            },
            "communities_checked": sorted(report.community_breakdown),
        }

    def generate_record_community_events(self, recids=None, community_ids=None,
                                         start_date=None, end_date=None, progress=None):
        """Backfill missing membership events; ``(records, new events, existing events)``."""
        scope = ce.build_scope(recids, community_ids, start_date, end_date)
        return ce.generate(scope, progress=progress)

    def aggregate_stats(self, community_ids=None, aggregation_types=None, start_date=None,
                        end_date=None, eager=True, update_bookmark=True,
                        ignore_bookmark=False, verbose=False, progress=None, workers=None,
                        until_caught_up=False):
        """Run the aggregators (all registered series by default) and return the report.

        ``eager`` runs in this process; otherwise the Celery task is queued and
        waited for (its id is added as ``task_id``). Unknown aggregator names,
        communities and malformed dates raise ``InvalidInputError`` (a
        ``ValueError``) before anything is written.
        """
        from ..aggregations.runner import communities_to_aggregate, resolve_dates, resolve_series
        from ..tasks.aggregation_tasks import aggregate_community_record_stats, run_aggregation

        resolve_series(aggregation_types)
        resolve_dates(start_date, end_date)
        ids = communities_to_aggregate(community_ids) if community_ids else None
        args = dict(aggregations=list(aggregation_types) if aggregation_types else None,
                    start_date=start_date, end_date=end_date,
                    update_bookmark=update_bookmark, ignore_bookmark=ignore_bookmark,
                    community_ids=ids, verbose=verbose, workers=workers,
                    until_caught_up=until_caught_up)
        if eager:
            return run_aggregation(**args, progress=progress)
        task = aggregate_community_record_stats.delay(**args)
        result = task.get()
        result["task_id"] = task.id
        return result

    def read_stats(self, community_id, start_date, end_date, query_type=None):
        """Stored documents of a community (or ``global``) between two days.

        ``(found, data)``: ``data`` is a list for one ``query_type`` and a dict
        keyed by query name otherwise. Unknown types, communities and bad
        dates raise ``InvalidInputError``.
        """
        from ..aggregations.runner import communities_to_aggregate, resolve_dates
        from ..aggregations.status import QUERY_NAMES, read_documents, series_for_query
        from ..exceptions import InvalidInputError

        if query_type and query_type not in QUERY_NAMES:
            raise InvalidInputError(f"Unknown query type '{query_type}' (known: "
                                    f"{', '.join(sorted(QUERY_NAMES))}).")
        start, end = resolve_dates(start_date, end_date)
        (community,) = communities_to_aggregate([community_id])
        found = read_documents(community, start, end, series_for_query(query_type))
        data = next(iter(found.values())) if query_type else found
        return any(found.values()), data

    def get_aggregation_status(self, community_ids=None):
        """Per community (and ``global``) and series: documents, first/last day, bookmark."""
        from ..aggregations.runner import communities_to_aggregate
        from ..aggregations.status import aggregation_status

        ids = communities_to_aggregate(community_ids) if community_ids else all_community_ids()
        return aggregation_status(ids)

    def clear_aggregation_bookmarks(self, community_ids=None, aggregation_types=None,
                                    all_communities=False, all_aggregation_types=False):
        """Delete aggregation bookmarks; ``{success, cleared, total_cleared}``."""
        from ..aggregations.runner import communities_to_aggregate, resolve_series
        from ..aggregations.status import clear_bookmarks
        from ..exceptions import InvalidInputError

        if not (community_ids or aggregation_types or all_communities
                or all_aggregation_types):
            raise InvalidInputError("Say what to clear: --community-id, --aggregation-type, "
                                    "--all-communities or --all-aggregation-types.")
        series = resolve_series(None if all_aggregation_types or not aggregation_types
                                else aggregation_types)
        ids = None if all_communities or not community_ids else \
            communities_to_aggregate(community_ids)
        cleared = clear_bookmarks(series, ids)
        return {"success": True, "cleared": cleared,
                "total_cleared": sum(len(v) for v in cleared.values())}

    def clear_aggregation_lock(self, lock_name="community_stats_aggregation", dry_run=False):
        """Remove ``lock:<name>``; ``{success, lock_name, found, holder, cleared}``."""
        from ..utils.jobs import clear_lock, holder

        info = holder(lock_name)
        cleared = bool(info) and not dry_run and clear_lock(lock_name)
        return {"success": True, "lock_name": lock_name, "found": info is not None,
                "holder": info, "cleared": cleared, "dry_run": dry_run}

    def list_aggregation_locks(self):
        """``{locks: {name: holder}}`` of every ``lock:*`` key."""
        from ..utils.jobs import list_locks

        return {"locks": list_locks()}


def all_community_ids():
    """Every community that is not deleted (oldest first), then ``global``."""
    from invenio_communities.communities.records.models import CommunityMetadata
    from invenio_communities.communities.records.systemfields.deletion_status import (
        CommunityDeletionStatusEnum,
    )

    rows = CommunityMetadata.query.filter(
        CommunityMetadata.deletion_status == CommunityDeletionStatusEnum.PUBLISHED)
    return [str(r.id) for r in rows.order_by(CommunityMetadata.created)] + ["global"]
