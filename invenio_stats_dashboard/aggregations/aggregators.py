# Part of invenio-stats-dashboard (MIT License).
"""The classes registered in ``STATS_AGGREGATIONS`` under upstream's keys.

Thin faces of the one engine (``runner.aggregate``): the class names are
upstream's (python-api.md §5), the series is the registration name.
"""

from .runner import aggregate


class CommunityAggregatorBase:
    """``run`` of one series, as invenio-stats and upstream's task call it."""

    def __init__(self, name, *args, community_ids=None, **kwargs):
        """``name`` is the registration key (and the bookmark key)."""
        self.name = name
        self.communities_to_aggregate = community_ids

    def run(self, start_date=None, end_date=None, update_bookmark=True, ignore_bookmark=False,
            return_results=False):
        """Aggregate this series; one tuple per community: (docs indexed, errors, info)."""
        report = aggregate([self.name], self.communities_to_aggregate, start_date, end_date,
                           update_bookmark, ignore_bookmark)["results"][0]
        self.communities_to_aggregate = list(report["communities"])
        return [(info.get("docs_indexed", 0), report["errors"], info)
                for info in report["communities"].values()]


# Upstream's names, one per registered series (all the same engine).
class CommunityRecordsDeltaAddedAggregator(CommunityAggregatorBase):
    """``community-records-delta-added-agg``."""


class CommunityRecordsDeltaCreatedAggregator(CommunityAggregatorBase):
    """``community-records-delta-created-agg``."""


class CommunityRecordsDeltaPublishedAggregator(CommunityAggregatorBase):
    """``community-records-delta-published-agg``."""


class CommunityRecordsSnapshotAddedAggregator(CommunityAggregatorBase):
    """``community-records-snapshot-added-agg``."""


class CommunityRecordsSnapshotCreatedAggregator(CommunityAggregatorBase):
    """``community-records-snapshot-created-agg``."""


class CommunityRecordsSnapshotPublishedAggregator(CommunityAggregatorBase):
    """``community-records-snapshot-published-agg``."""


class CommunityUsageDeltaAggregator(CommunityAggregatorBase):
    """``community-usage-delta-agg``."""


class CommunityUsageSnapshotAggregator(CommunityAggregatorBase):
    """``community-usage-snapshot-agg``."""


CLASSES = {
    "community-records-delta-added-agg": CommunityRecordsDeltaAddedAggregator,
    "community-records-delta-created-agg": CommunityRecordsDeltaCreatedAggregator,
    "community-records-delta-published-agg": CommunityRecordsDeltaPublishedAggregator,
    "community-records-snapshot-added-agg": CommunityRecordsSnapshotAddedAggregator,
    "community-records-snapshot-created-agg": CommunityRecordsSnapshotCreatedAggregator,
    "community-records-snapshot-published-agg": CommunityRecordsSnapshotPublishedAggregator,
    "community-usage-delta-agg": CommunityUsageDeltaAggregator,
    "community-usage-snapshot-agg": CommunityUsageSnapshotAggregator,
}


def register_aggregations():
    """``COMMUNITY_STATS_AGGREGATIONS`` as configured (python-api.md §5)."""
    from flask import current_app

    return dict(current_app.config["COMMUNITY_STATS_AGGREGATIONS"])
