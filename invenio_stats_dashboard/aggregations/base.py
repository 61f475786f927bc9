# Part of invenio-stats-dashboard (MIT License).
"""Aggregator base classes."""


class CommunityEventsIndexAggregator:
    """No-op aggregator: the ``community-events-agg`` registry entry's class.

    Upstream registers the community-events index template through this
    dummy aggregation; we register templates ourselves, but keep the entry so
    the registry names match upstream. Running it does nothing.
    """

    def __init__(self, name, *args, **kwargs):
        """Keep the name only."""
        self.name = name

    def run(self, *args, **kwargs):
        """Nothing to aggregate."""
        return []
