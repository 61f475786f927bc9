# Part of invenio-stats-dashboard (MIT License).
"""Family ``usage``: see docs/plans/aggregations.md (contracts). Not implemented yet."""


def first_day(ctx, series, community_id):
    """Where the series begins for the community (a date), or None."""
    raise NotImplementedError("usage: first_day")


def compute(ctx, series, community_id, days):
    """Yield ``(day, body)`` for every day of ``days``, in order."""
    raise NotImplementedError("usage: compute")
