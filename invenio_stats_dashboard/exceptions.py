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
