# Part of invenio-stats-dashboard (MIT License).
"""Exceptions. Raised inside; translated once at the CLI and once at the API."""

from invenio_rest.errors import RESTException


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



class _HTTPError(RESTException):
    """Mixin: the error renders itself as JSON ``{"status", "message"}``.

    Being a werkzeug ``HTTPException`` (via invenio-rest), Flask answers it
    with its own status wherever it is raised inside a request — invenio-stats'
    ``/api/stats`` view included, which has no handler of its own for it.
    """

    def __init__(self, message):
        """Keep ``message`` both as the HTTP description and as ``args[0]``."""
        RESTException.__init__(self, description=message)
        self.args = (message,)

    def __str__(self):
        """The bare message (the CLI prints it on one line)."""
        return str(self.description)


class InvalidStatsRequest(_HTTPError, InvalidInputError):
    """A stats API request is malformed (unknown param, bad date, ...): HTTP 400.

    Also a ``ValueError``, which invenio-stats' view turns into its own 400 with
    the same message. The message names the bad field.
    """

    code = 400


class CommunityNotFound(_HTTPError, StatsDashboardError):
    """The community does not exist OR the caller may not read it: HTTP 404.

    Both cases share one error so the API never leaks a restricted
    community's existence.
    """

    code = 404


class StatsPermissionDenied(_HTTPError, StatsDashboardError):
    """The caller may read the community but its policy denies the stats: HTTP 403."""

    code = 403
