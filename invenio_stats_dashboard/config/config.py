# Part of invenio-stats-dashboard.
#
# invenio-stats-dashboard is free software; you can redistribute it and/or
# modify it under the terms of the MIT License; see LICENSE file for details.

"""Default configuration of invenio-stats-dashboard.

This is the defaults module (spec: ``config.md``). There is no
``invenio_config.module`` entry point: ``InvenioStatsDashboard.init_config``
``setdefault``s every name of this module that starts with ``STATS_DASHBOARD_``,
``COMMUNITY_STATS_``, ``STATS_CACHE_`` or ``STATS_AGG_REGISTRY_`` into
``app.config`` (instance values from ``invenio.cfg`` / ``INVENIO_*`` win), and
all code reads the merged ``app.config`` values, never this module directly.

Decision (config.md §9): unlike upstream, ``STATS_CACHE_*`` and
``STATS_AGG_REGISTRY_*`` are defaulted too, so the values below are the
effective ones: cached responses expire after ``STATS_CACHE_DEFAULT_TTL`` = 365
days and the (serializer-only) compression default is ``gzip``.

Names upstream reads but never defined (config.md §14.2) are defined here with
the readers' fallback values. Note that the ``STATS_DATA_SERIES_*`` read-side
tuning names (§11.3) carry none of the four prefixes above: readers must use the
same fallbacks, or ``init_config`` must default that prefix as well.
"""

from celery.schedules import crontab
from invenio_i18n import lazy_gettext as _

from ..resources.categories import stats_queries as _stats_queries
from ..resources.permissions import (
    stats_query_permission_factory as _stats_query_permission_factory,
)
from .layout import STATS_DASHBOARD_LAYOUT  # noqa: F401
from .subcounts import COMMUNITY_STATS_SUBCOUNTS  # noqa: F401

# --- 2. Enable / disable flags ---

COMMUNITY_STATS_ENABLED = True  # master switch (tasks, registries, menus, services)
COMMUNITY_STATS_SCHEDULED_AGG_TASKS_ENABLED = False  # keep off during setup
COMMUNITY_STATS_SCHEDULED_CACHE_TASKS_ENABLED = False  # keep off during setup
STATS_DASHBOARD_ENABLED_GLOBAL = False  # global page shows data only when true
STATS_DASHBOARD_ENABLED_COMMUNITY = False  # instance-wide switch for communities
STATS_DASHBOARD_COMMUNITY_OPT_IN = True  # communities must set stats:dashboard_enabled
STATS_DASHBOARD_MENU_ENABLED = True  # register the main-menu item
STATS_DASHBOARD_COMMUNITY_MENU_ENABLED = True  # register the community-header tab
STATS_DASHBOARD_USE_TEST_DATA = False  # client uses bundled sample data
STATS_DASHBOARD_OPTIMIZE_DATA_SERIES = True  # trim payloads to layout's metrics

# --- 3. Menus, messages and the community settings field ---

STATS_DASHBOARD_MENU_TEXT = _("Statistics")  # main-menu label (main.stats)
STATS_DASHBOARD_MENU_ORDER = 1  # position in the main menu
STATS_DASHBOARD_MENU_ENDPOINT = "invenio_stats_dashboard.global_stats_dashboard"
STATS_DASHBOARD_MENU_REGISTRATION_FUNCTION = None  # callable(app) replaces default
STATS_DASHBOARD_COMMUNITY_MENU_TEXT = _("Statistics")  # tab at communities.stats
STATS_DASHBOARD_COMMUNITY_MENU_ORDER = 35  # after "Members" in the stock header
# Endpoint must accept ``pid_value``.
STATS_DASHBOARD_COMMUNITY_MENU_ENDPOINT = (
    "invenio_stats_dashboard.community_stats_dashboard"
)
STATS_DASHBOARD_COMMUNITY_MENU_REGISTRATION_FUNCTION = None  # callable(app) or None

# Plain string, translated at render; ``{title}`` <- THEME_SHORT_TITLE.
STATS_DASHBOARD_DISABLED_MESSAGE_GLOBAL = (
    "The global and community statistics dashboards must be enabled by the "
    "{title} administrators."
)
# Shown on a community page when dashboards are on but the community opted out.
STATS_DASHBOARD_DISABLED_MESSAGE_COMMUNITY = _(
    "The statistics dashboard has not been enabled for this community. "
    "Community managers can enable it in the community settings."
)

# Opt-in checkbox of the community settings form (read once at start-up).
STATS_DASHBOARD_SETTINGS_COMMUNITY_ENABLED_LABEL = _("Enable Dashboard")
# One name everywhere (dashboard-ui.md §1.5): the tab is "Statistics", not
# upstream's "Insights".
STATS_DASHBOARD_SETTINGS_COMMUNITY_ENABLED_DESCRIPTION = _(
    "Enable the 'Statistics' tab that displays a community statistics dashboard."
)
STATS_DASHBOARD_SETTINGS_COMMUNITY_ENABLED_ICON = "chart line"  # not defined upstream
STATS_DASHBOARD_SETTINGS_COMMUNITY_ENABLED_HELPTEXT = _(  # not defined upstream
    "It may take several hours before initial calculations are complete and your "
    "dashboard is fully functional."
)

# --- 4. Subcount configuration ---

# COMMUNITY_STATS_SUBCOUNTS is imported from .subcounts (frozen after setup).
COMMUNITY_STATS_TOP_SUBCOUNT_LIMIT = 20  # N for "top" snapshot subcounts

# Breakdowns a chart offers when its widget has no ``display_subcounts`` prop.
STATS_DASHBOARD_UI_SUBCOUNTS = {
    "resource_types": {},
    "subjects": {},
    "languages": {},
    "rights": {},
    "funders": {},
    "periodicals": {},
    "publishers": {},
    "affiliations": {},
    "countries": {},
    "file_types": {},
    "access_statuses": {},
    # "referrers": {},  # disabled (no usage data by default)
}

# --- 5. Dashboard layout ---

# STATS_DASHBOARD_LAYOUT is imported from .layout (global_layout, 4 tabs).
# Filled by the API work (config/component_metrics.py registry).
STATS_DASHBOARD_COMPONENT_METRICS_REGISTRY = {}

# --- 6. UI defaults ---

STATS_DASHBOARD_UI_CONFIG = {
    "global": {
        "title": _("Statistics"),
        "description": _("This is the global stats dashboard."),
        "maxHistoryYears": 10,  # cap on how far back ranges go
        "default_granularity": "week",
        "show_title": False,  # the global page has its own subheader
        "show_description": False,
    },
    "community": {
        "title": _("Statistics"),
        "description": _("This is the community stats dashboard."),
        "maxHistoryYears": 10,
        "default_granularity": "week",
        "show_title": True,
        "show_description": False,
    },
}
# Initial date-range preset per granularity (keys are fixed).
STATS_DASHBOARD_DEFAULT_RANGE_OPTIONS = {
    "day": "30days",
    "week": "yearToDate",
    "month": "yearToDate",
    "quarter": "yearToDate",
    "year": "2years",
}
STATS_DASHBOARD_COMPRESS_JSON = False  # deprecated: server-level compression instead
STATS_DASHBOARD_CLIENT_CACHE_COMPRESSION_ENABLED = False  # gzip IndexedDB entries

# --- 7. Routes, templates, API endpoint, serializers ---

STATS_DASHBOARD_ROUTES = {  # UI blueprint ``invenio_stats_dashboard``
    "global": "/stats",
    "community": "/communities/<pid_value>/stats",  # slug or UUID
}
STATS_DASHBOARD_API_ROUTES = {  # API blueprint (POST) -> /api/stats-dashboard
    "stats_series": "/stats-dashboard",
}
STATS_DASHBOARD_TEMPLATES = {
    "macro": "invenio_stats_dashboard/macros/stats_dashboard_macro.html",
    "global": "invenio_stats_dashboard/stats_dashboard.html",
    "community": "invenio_communities/details/stats/index.html",
}
# Content negotiation of /api/stats-dashboard: mimetype -> serializer (import
# string or callable ``(results, **options) -> (body bytes, headers)``); add
# entries for more formats. JSON answers a missing Accept or */* (docs/exports.md).
_SERIALIZERS = "invenio_stats_dashboard.resources.serializers"
COMMUNITY_STATS_SERIALIZERS = {
    "application/json": f"{_SERIALIZERS}.json:json_serializer",
    "application/json+gzip": f"{_SERIALIZERS}.json:gzip_json_serializer",
    "application/json+br": f"{_SERIALIZERS}.json:brotli_json_serializer",
    "text/csv": f"{_SERIALIZERS}.archives:csv_serializer",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": (
        f"{_SERIALIZERS}.archives:xlsx_serializer"
    ),
    "application/xml": f"{_SERIALIZERS}.xml:xml_serializer",
}
# The 18 STATS_QUERIES entries (api-and-cache.md §2.2, created/published raw
# names included); merged into STATS_QUERIES by the extension.
COMMUNITY_STATS_QUERIES = _stats_queries(_stats_query_permission_factory)
# Class (or import string) with can_read_stats(identity, community); None: the
# default (whoever may read the community may read its statistics).
COMMUNITY_STATS_PERMISSION_POLICY = None
# ours: what the API answers for a readable community whose dashboard is not
# enabled (STATS_DASHBOARD_ENABLED_COMMUNITY and the stats:dashboard_enabled /
# opt-in rule): "serve" (upstream: whatever is aggregated) or "forbid" (403).
COMMUNITY_STATS_API_DISABLED_DASHBOARD = "serve"

# --- 8. Celery beat schedules and locks ---

COMMUNITY_STATS_CELERYBEAT_AGG_SCHEDULE = {
    "stats-aggregate-community-record-stats": {
        "task": (
            "invenio_stats_dashboard.tasks.aggregation_tasks."
            "aggregate_community_record_stats"
        ),
        # minute 40: between stock tasks (0 event agg, 10 reindex, 25/55 events)
        "schedule": crontab(minute="40", hour="*"),
        # upstream's four first; the created/published bases are scheduled too (R5)
        "args": (
            (
                "community-usage-delta-agg",
                "community-records-delta-added-agg",
                "community-records-snapshot-added-agg",
                "community-usage-snapshot-agg",
                "community-records-delta-created-agg",
                "community-records-snapshot-created-agg",
                "community-records-delta-published-agg",
                "community-records-snapshot-published-agg",
            ),
        ),
    },
}
COMMUNITY_STATS_CELERYBEAT_CACHE_SCHEDULE = {
    "stats-cache-hourly-generation": {
        "task": (
            "invenio_stats_dashboard.tasks.cache_tasks.generate_cached_responses_task"
        ),
        "schedule": crontab(minute="50", hour="*"),  # after the aggregation run
        # community_ids="all", years=None (whole lifespan), overwrite=False,
        # current_year_only=False, optimize=None (use config)
        "args": ("all", None, False, False, None),
    },
}
COMMUNITY_STATS_CATCHUP_INTERVAL = 365  # max days an aggregator processes per run
# ours: workers taking part in one aggregation run (the task itself plus
# aggregate_run_worker tasks on other Celery workers); 1 = no scale-out.
COMMUNITY_STATS_AGGREGATION_WORKERS = 1

# Distributed locks (atomic cache add of ``lock:<lock_name>``); a task that cannot
# get its lock returns a "skipped" result.
STATS_DASHBOARD_LOCK_CONFIG = {
    "enabled": True,  # global switch; per-task flags must also be true
    "aggregation": {
        "enabled": True,
        "lock_timeout": 86400,  # seconds
        "lock_name": "community_stats_aggregation",
    },
    "response_caching": {
        "enabled": True,
        "lock_timeout": 3600,  # seconds
        "lock_name": "community_stats_cache_generation",
    },
    # ours: usage-event migration and re-enrichment (one run at a time)
    "usage_events": {
        "enabled": True,
        "lock_timeout": 86400,  # seconds
        "lock_name": "community_stats_usage_events",
    },
}
# ours: a lock's lease (seconds), renewed by its holder while it runs; a killed
# holder's lock expires by itself after this long (upstream: lock_timeout, G21).
STATS_DASHBOARD_LOCK_LEASE = 60

# --- 9. Response cache and registry (Redis) ---

# Full Redis URL for cache and registry; None/empty = derive from CACHE_REDIS_URL
# (readers must treat None as unset, never stringify it).
STATS_CACHE_REDIS_URL = None
STATS_CACHE_REDIS_DB = 7  # DB substituted into CACHE_REDIS_URL
STATS_CACHE_PREFIX = "stats_dashboard"  # keys are <prefix>:<sha256>
STATS_CACHE_DEFAULT_TTL = 365  # days; None/0 = no expiry (effective, see docstring)
STATS_CACHE_COMPRESSION_METHOD = "gzip"  # compressed JSON serializer default
STATS_AGG_REGISTRY_REDIS_DB = 8  # job-flag registry (ignored with REDIS_URL set)
STATS_AGG_REGISTRY_PREFIX = "stats_agg_registry"
# ours (services/response_cache.py): an entry computed while its aggregations are
# incomplete is kept this many seconds only (0 = not stored); concurrent misses of
# one key wait at most STATS_CACHE_LOCK_WAIT seconds for the computing request;
# its lock's lease (None = STATS_DASHBOARD_LOCK_LEASE); bases generated per category.
STATS_CACHE_INCOMPLETE_TTL = 300
STATS_CACHE_LOCK_WAIT = 120
STATS_CACHE_LOCK_LEASE = None
STATS_CACHE_DATE_BASES = ("added",)
# ours: the queries generated per (community, year); None = every STATS_QUERIES name
# ending in "-category" (upstream's rule).
STATS_CACHE_CATEGORIES = None

# --- 10. Usage-event migration (reindexing) settings ---

STATS_DASHBOARD_REINDEXING_BATCH_SIZE = 5000  # events per batch (clamped to 10,000)
STATS_DASHBOARD_REINDEXING_MAX_BATCHES = 1000  # per monthly index per run
STATS_DASHBOARD_REINDEXING_MAX_MEMORY_PERCENT = 85  # host memory stop threshold
#: Ours: stop threshold on the OpenSearch JVM heap (upstream compared nothing, G22).
STATS_DASHBOARD_REINDEXING_MAX_HEAP_PERCENT = 90
STATS_DASHBOARD_REINDEXING_MAX_SPOT_CHECK_SAMPLE_SIZE = 100  # not defined upstream
#: Ours: record groups copied concurrently by the migration (server-side).
STATS_DASHBOARD_REINDEXING_PARALLEL_GROUPS = 2
# ours: months migrated (or re-enriched) at the same time; each has its groups in flight
STATS_DASHBOARD_REINDEXING_PARALLEL_MONTHS = 3
# ours: throttle each server-side copy to this many events per second (None = as fast
# as the cluster goes), to spare a busy production cluster during the migration
STATS_DASHBOARD_REINDEXING_REQUESTS_PER_SECOND = None

# --- 11. Aggregation tuning ---

# 11.1 Bulk indexing with adaptive chunking (avoids HTTP 413 on big documents).
COMMUNITY_STATS_INITIAL_CHUNK_SIZE = 50  # starting docs per bulk request
COMMUNITY_STATS_MIN_CHUNK_SIZE = 1  # floor; failing at the floor re-raises
COMMUNITY_STATS_MAX_CHUNK_SIZE = 100  # ceiling for growth
COMMUNITY_STATS_CHUNK_REDUCTION_FACTOR = 0.7  # shrink on 413 / timeout
COMMUNITY_STATS_CHUNK_GROWTH_FACTOR = 1.05  # grow after an error-free bulk call
COMMUNITY_STATS_BULK_INDEX_TIMEOUT = 300  # seconds, bulk and aggregator searches

# 11.2 Usage-snapshot memory estimation (see aggregations.md §9.3).
COMMUNITY_STATS_WS_OVERHEAD = 1.1  # "all" subcount working set
COMMUNITY_STATS_SCAN_OVERHEAD = 0.85  # scan page
COMMUNITY_STATS_BULK_OVERHEAD = 1.3  # bulk buffer
COMMUNITY_STATS_DELTA_OVERHEAD = 1.2  # delta buffer
COMMUNITY_STATS_MEM_SAFETY_FACTOR = 1.2  # on the predicted peak
COMMUNITY_STATS_TOP_GROWTH_FACTOR = 3.0  # growth allowance for top caches
COMMUNITY_STATS_TOP_GROWTH_FLOOR_FACTOR = 5.0  # min cache size as multiple of N
COMMUNITY_STATS_TOP_HARD_CAP_PER_KEY = 10000  # per-key cap on cached top items
COMMUNITY_STATS_TOP_DISCOVERY_DECAY = 0.3  # damping of projected new items
COMMUNITY_STATS_AVG_DELTA_BYTES = 10240  # bytes per delta doc if sampling fails
COMMUNITY_STATS_INMEMORY_MULTIPLIER = 4.0  # serialized -> in-memory size
# Not defined upstream; readers' fallbacks:
COMMUNITY_STATS_SCAN_PAGE_SIZE = 200  # starting scan page size
COMMUNITY_STATS_SCAN_PAGE_SIZE_MIN = 50
COMMUNITY_STATS_SCAN_PAGE_SIZE_MAX = 500
COMMUNITY_STATS_DELTA_BUFFER_SIZE = COMMUNITY_STATS_SCAN_PAGE_SIZE  # estimate only
COMMUNITY_STATS_SCAN_SCROLL = "2m"  # read but unused upstream
COMMUNITY_STATS_MEM_BUDGET_BYTES = None  # absolute budget (positive int) ...
COMMUNITY_STATS_MEM_HIGH_WATER_PERCENT = 0.75  # ... else this fraction of RAM

# 11.3 Read-side data-series memory (not defined upstream; readers' fallbacks).
STATS_DATA_SERIES_PAGE_SIZE = 365  # initial aggregation docs per series page
STATS_DATA_SERIES_PAGE_SIZE_MIN = 50
STATS_DATA_SERIES_PAGE_SIZE_MAX = 365
STATS_DATA_SERIES_PAGE_OVERHEAD = 0.85
STATS_DATA_SERIES_SERIES_OVERHEAD = 1.5
STATS_DATA_SERIES_MEM_SAFETY_FACTOR = 1.2
STATS_DATA_SERIES_INMEMORY_MULTIPLIER = 4.0
STATS_DATA_SERIES_BYTES_PER_DATAPOINT = 256
STATS_DATA_SERIES_AVG_DOC_BYTES = 2048
STATS_DATA_SERIES_MEM_BUDGET_BYTES = None  # absolute budget (positive int) ...
STATS_DATA_SERIES_MEM_HIGH_WATER_PERCENT = 0.75  # ... else this fraction of RAM

# 11.4 Other.
COMMUNITY_STATS_FILTER_AGGREGATION_SIZE = 10000  # upstream name; unused: the filter pages every community

# --- 12. Registries merged into invenio-stats ---

# Merged into STATS_AGGREGATIONS under upstream's keys (all eight series: the
# created and published bases too, which upstream leaves unregistered). Their
# index templates are built from COMMUNITY_STATS_SUBCOUNTS and put by the
# extension (aggregations/mappings.py), hence the empty template package.
_AGG_CLASSES = {
    "community-records-delta-added-agg": "CommunityRecordsDeltaAddedAggregator",
    "community-records-delta-created-agg": "CommunityRecordsDeltaCreatedAggregator",
    "community-records-delta-published-agg": "CommunityRecordsDeltaPublishedAggregator",
    "community-records-snapshot-added-agg": "CommunityRecordsSnapshotAddedAggregator",
    "community-records-snapshot-created-agg": "CommunityRecordsSnapshotCreatedAggregator",
    "community-records-snapshot-published-agg": "CommunityRecordsSnapshotPublishedAggregator",
    "community-usage-delta-agg": "CommunityUsageDeltaAggregator",
    "community-usage-snapshot-agg": "CommunityUsageSnapshotAggregator",
}
COMMUNITY_STATS_AGGREGATIONS = {
    **{name: {
        "templates": "invenio_stats_dashboard.search_indices.search_templates."
                     "registered_by_extension",
        "cls": f"invenio_stats_dashboard.aggregations.aggregators:{cls}",
        "params": {},
    } for name, cls in _AGG_CLASSES.items()},
    "community-events-agg": {
        "templates": (
            "invenio_stats_dashboard.search_indices.search_templates."
            "stats_community_events"
        ),
        "cls": "invenio_stats_dashboard.aggregations.base:CommunityEventsIndexAggregator",
        "params": {},
    },
}

# --- Ours: community events and background jobs ---
# Records per page of the community-events backfill (search_after pages).
COMMUNITY_STATS_BACKFILL_PAGE_SIZE = 500
# Folder of background-job PID/status/log files; None = <instance>/stats-dashboard-processes.
STATS_DASHBOARD_PROCESS_DIR = None

__all__ = tuple(name for name in list(globals()) if name.isupper())
