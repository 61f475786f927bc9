# Part of invenio-stats-dashboard (MIT License).
"""``CommunityStatsService``: the extension's main service (python-api.md §4.1).

Methods arrive with their capabilities: the membership-log backfill and the
aggregations.
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
                        ignore_bookmark=False, verbose=False, progress=None):
        """Run the aggregators (all registered series by default) and return the report.

        ``eager`` runs in this process; otherwise the Celery task is queued and
        waited for (its id is added as ``task_id``). Unknown aggregator names
        raise ``InvalidInputError`` before anything is written.
        """
        from ..aggregations.runner import resolve_series
        from ..tasks.aggregation_tasks import aggregate_community_record_stats

        resolve_series(aggregation_types)
        args = dict(aggregations=list(aggregation_types) if aggregation_types else None,
                    start_date=start_date, end_date=end_date,
                    update_bookmark=update_bookmark, ignore_bookmark=ignore_bookmark,
                    community_ids=list(community_ids) if community_ids else None,
                    verbose=verbose)
        if eager:
            return aggregate_community_record_stats.run(**args, progress=progress)
        task = aggregate_community_record_stats.delay(**args)
        result = task.get()
        result["task_id"] = task.id
        return result
