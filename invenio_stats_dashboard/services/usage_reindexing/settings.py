# Part of invenio-stats-dashboard (MIT License).
"""Tuning of one migration or re-enrichment run, passed per call.

The service object is shared by every CLI call and Celery task of a worker,
so a run's options live in a :class:`RunSettings` handed down the call, never
on the service (upstream mutates it, and one run's batch size leaked into the
next).
"""

from dataclasses import dataclass, replace

MAX_BATCH_SIZE = 10_000  # OpenSearch's result window


@dataclass(frozen=True)
class RunSettings:
    """What one run may do and how fast."""

    batch_size: int = 5000
    max_batches: int = 1000
    max_memory_percent: float = 85.0
    max_heap_percent: float = 90.0
    parallel_groups: int = 2
    parallel_months: int = 3
    sample_size: int = 100
    requests_per_second: float | None = None  # throttle of each server-side copy

    @classmethod
    def from_config(cls, config):
        """Defaults of the merged app config."""
        return cls(
            batch_size=min(int(config["STATS_DASHBOARD_REINDEXING_BATCH_SIZE"]), MAX_BATCH_SIZE),
            max_batches=int(config["STATS_DASHBOARD_REINDEXING_MAX_BATCHES"]),
            max_memory_percent=float(config["STATS_DASHBOARD_REINDEXING_MAX_MEMORY_PERCENT"]),
            max_heap_percent=float(config.get("STATS_DASHBOARD_REINDEXING_MAX_HEAP_PERCENT", 90)),
            parallel_groups=max(1, int(config.get("STATS_DASHBOARD_REINDEXING_PARALLEL_GROUPS", 2))),
            parallel_months=max(1, int(config.get("STATS_DASHBOARD_REINDEXING_PARALLEL_MONTHS", 3))),
            sample_size=int(config.get("STATS_DASHBOARD_REINDEXING_MAX_SPOT_CHECK_SAMPLE_SIZE", 100)),
            requests_per_second=config.get("STATS_DASHBOARD_REINDEXING_REQUESTS_PER_SECOND"),
        )

    def updated(self, **overrides):
        """A copy with the options a caller gave (``None`` keeps the default)."""
        given = {k: v for k, v in overrides.items() if v is not None}
        if "batch_size" in given:
            given["batch_size"] = min(int(given["batch_size"]), MAX_BATCH_SIZE)
        return replace(self, **given)
