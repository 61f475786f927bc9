# Part of invenio-stats-dashboard (MIT License).
"""Exceptions. Raised inside; translated once at the CLI and once at the API."""


class StatsDashboardError(Exception):
    """Base of our errors (the CLI prints the message on one line, exit 1)."""


class InvalidInputError(StatsDashboardError, ValueError):
    """Bad user input (unknown ids, malformed dates): nothing was written."""


class ProcessError(StatsDashboardError):
    """A background job could not be started, read or cancelled."""


class DependencyError(StatsDashboardError):
    """A required package or service is missing."""


class CommunityEventIndexingError(StatsDashboardError):
    """Writing the community membership log failed."""


class MissingCommunityEventsError(StatsDashboardError):
    """Records lack community events (run the backfill)."""


class NoCommunityEventsIndexError(StatsDashboardError):
    """The community events index does not exist."""


class TaskLockAcquisitionError(StatsDashboardError):
    """Another instance of a locked task is running."""


class DeltaDataGapError(StatsDashboardError, ValueError):
    """Snapshot aggregation found a gap in the daily deltas."""


class CommunityEventsNotInitializedError(StatsDashboardError):
    """``stats-community-events`` is missing or empty."""


class UsageEventsNotMigratedError(StatsDashboardError):
    """Usage events lack the enrichment fields (run the migration)."""


class InvalidStatsRequest(InvalidInputError):
    """A stats API request is malformed (unknown param, bad date, ...): HTTP 400.

    The message is shown to the caller as is, so it names the bad field.
    """


class CommunityNotFound(StatsDashboardError):
    """The community does not exist OR the caller may not read it: HTTP 404.

    Both cases share one error so the API never leaks a restricted
    community's existence.
    """


class StatsPermissionDenied(StatsDashboardError):
    """The caller may see the community but not its statistics: HTTP 403."""
