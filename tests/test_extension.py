# Part of invenio-stats-dashboard (MIT License).
"""The extension: defaults, merged-config registries, entry points, CLI, proxies."""

from importlib.metadata import entry_points

import pytest
from flask import Flask

from invenio_stats_dashboard.ext import InvenioStatsDashboard

#: python-api.md §1: group -> {name: target}
ENTRY_POINTS = {
    "invenio_base.apps": {"invenio_stats_dashboard": "invenio_stats_dashboard.ext:InvenioStatsDashboard"},
    "invenio_base.api_apps": {"invenio_stats_dashboard": "invenio_stats_dashboard.ext:InvenioStatsDashboard"},
    "invenio_base.blueprints": {"invenio_stats_dashboard": "invenio_stats_dashboard.views.views:create_blueprint"},
    "invenio_base.api_blueprints": {"invenio_stats_dashboard": "invenio_stats_dashboard.views.views:create_api_blueprint"},
    "invenio_base.finalize_app": {"invenio_stats_dashboard": "invenio_stats_dashboard.ext:finalize_app"},
    "invenio_celery.tasks": {
        "invenio_stats_dashboard": "invenio_stats_dashboard.tasks.aggregation_tasks",
        "invenio_stats_dashboard_caching": "invenio_stats_dashboard.tasks.cache_tasks",
        "invenio_stats_dashboard_reindexing": "invenio_stats_dashboard.tasks.usage_reindexing_tasks",
    },
    "invenio_assets.webpack": {"invenio_stats_dashboard_theme": "invenio_stats_dashboard.webpack:theme"},
    "flask.commands": {
        "community-stats": "invenio_stats_dashboard.cli:cli",
        # ours: the setup guide's `invenio custom-fields communities ...` spelling
        "custom-fields": "invenio_stats_dashboard.cli.custom_fields_cli:custom_fields_cli",
    },
}


def _bare_app(**config):
    app = Flask("t")
    app.config.update(config)
    return app


@pytest.mark.parametrize("group", sorted(ENTRY_POINTS))
def test_entry_points_are_declared_and_load(group):
    declared = {ep.name: ep for ep in entry_points(group=group)
                if ep.value.startswith("invenio_stats_dashboard")}
    assert {n: ep.value for n, ep in declared.items()} == ENTRY_POINTS[group]
    for ep in declared.values():
        assert ep.load() is not None


#: Upstream's names and defaults as the spec (shared/spec/config.md) lists them,
#: written down here rather than read from our defaults module.
SPEC_DEFAULTS = {
    "COMMUNITY_STATS_ENABLED": True,
    "COMMUNITY_STATS_SCHEDULED_AGG_TASKS_ENABLED": False,
    "COMMUNITY_STATS_SCHEDULED_CACHE_TASKS_ENABLED": False,
    "STATS_DASHBOARD_ENABLED_GLOBAL": False,
    "STATS_DASHBOARD_ENABLED_COMMUNITY": False,
    "STATS_DASHBOARD_COMMUNITY_OPT_IN": True,
    "STATS_DASHBOARD_MENU_ENABLED": True,
    "STATS_DASHBOARD_COMMUNITY_MENU_ENABLED": True,
    "STATS_DASHBOARD_USE_TEST_DATA": False,
    "STATS_DASHBOARD_OPTIMIZE_DATA_SERIES": True,
    "STATS_DASHBOARD_MENU_ORDER": 1,
    "STATS_DASHBOARD_MENU_ENDPOINT": "invenio_stats_dashboard.global_stats_dashboard",
    "STATS_DASHBOARD_MENU_REGISTRATION_FUNCTION": None,
    "STATS_DASHBOARD_COMMUNITY_MENU_ORDER": 35,
    "STATS_DASHBOARD_COMMUNITY_MENU_ENDPOINT": "invenio_stats_dashboard.community_stats_dashboard",
    "STATS_DASHBOARD_COMMUNITY_MENU_REGISTRATION_FUNCTION": None,
    "COMMUNITY_STATS_TOP_SUBCOUNT_LIMIT": 20,
    "STATS_DASHBOARD_COMPRESS_JSON": False,
    "STATS_DASHBOARD_CLIENT_CACHE_COMPRESSION_ENABLED": False,
    "STATS_DASHBOARD_API_ROUTES": {"stats_series": "/stats-dashboard"},
    "COMMUNITY_STATS_CATCHUP_INTERVAL": 365,
    "STATS_CACHE_REDIS_URL": None,
    "STATS_CACHE_REDIS_DB": 7,
    "STATS_CACHE_PREFIX": "stats_dashboard",
    "STATS_CACHE_COMPRESSION_METHOD": "gzip",
    "STATS_AGG_REGISTRY_REDIS_DB": 8,
    "STATS_AGG_REGISTRY_PREFIX": "stats_agg_registry",
    "STATS_DASHBOARD_REINDEXING_BATCH_SIZE": 5000,
    "STATS_DASHBOARD_REINDEXING_MAX_BATCHES": 1000,
    "STATS_DASHBOARD_REINDEXING_MAX_MEMORY_PERCENT": 85,
    "STATS_DASHBOARD_REINDEXING_MAX_SPOT_CHECK_SAMPLE_SIZE": 100,  # fallback of a missing name
    "COMMUNITY_STATS_INITIAL_CHUNK_SIZE": 50,
    "COMMUNITY_STATS_MIN_CHUNK_SIZE": 1,
    "COMMUNITY_STATS_MAX_CHUNK_SIZE": 100,
    "COMMUNITY_STATS_CHUNK_REDUCTION_FACTOR": 0.7,
    "COMMUNITY_STATS_CHUNK_GROWTH_FACTOR": 1.05,
    "COMMUNITY_STATS_BULK_INDEX_TIMEOUT": 300,
    "COMMUNITY_STATS_FILTER_AGGREGATION_SIZE": 10000,
}
#: Where we decided otherwise than upstream's effective value (docs/configuration.md).
OUR_DECISIONS = {"STATS_CACHE_DEFAULT_TTL": 365}  # upstream: None in effect (never merged)


def test_every_default_is_set_and_instance_values_win():
    app = _bare_app(COMMUNITY_STATS_TOP_SUBCOUNT_LIMIT=7, STATS_CACHE_PREFIX="mine")
    InvenioStatsDashboard(app)
    expected = {**SPEC_DEFAULTS, **OUR_DECISIONS,
                "COMMUNITY_STATS_TOP_SUBCOUNT_LIMIT": 7, "STATS_CACHE_PREFIX": "mine"}
    assert {name: app.config.get(name, "<missing>") for name in expected} == expected
    assert app.config["STATS_DASHBOARD_LOCK_CONFIG"]["aggregation"] == {
        "enabled": True, "lock_timeout": 86400, "lock_name": "community_stats_aggregation"}
    assert app.config["STATS_DASHBOARD_LOCK_CONFIG"]["response_caching"] == {
        "enabled": True, "lock_timeout": 3600, "lock_name": "community_stats_cache_generation"}
    assert set(app.config["COMMUNITY_STATS_SUBCOUNTS"]) == {
        "resource_types", "access_statuses", "languages", "subjects", "rights", "funders",
        "periodicals", "publishers", "affiliations", "countries", "referrers", "file_types"}
    assert app.extensions["invenio-stats-dashboard"]


def test_beat_schedule_comes_from_the_merged_config():
    """Upstream reads its module here (config.md §1 quirk); we read app.config."""
    mine = {"my-agg": {"task": "x", "schedule": 60}}
    app = _bare_app(
        CELERY_BEAT_SCHEDULE={"stock": {"task": "y", "schedule": 10}},
        COMMUNITY_STATS_SCHEDULED_AGG_TASKS_ENABLED=True,
        COMMUNITY_STATS_CELERYBEAT_AGG_SCHEDULE=mine,
    )
    InvenioStatsDashboard(app)
    assert set(app.config["CELERY_BEAT_SCHEDULE"]) == {"stock", "my-agg"}


def test_beat_entries_follow_their_flags():
    app = _bare_app(CELERY_BEAT_SCHEDULE={})
    InvenioStatsDashboard(app)
    assert app.config["CELERY_BEAT_SCHEDULE"] == {}
    app = _bare_app(COMMUNITY_STATS_SCHEDULED_CACHE_TASKS_ENABLED=True)
    InvenioStatsDashboard(app)
    assert list(app.config["CELERY_BEAT_SCHEDULE"]) == ["stats-cache-hourly-generation"]
    entry = app.config["CELERY_BEAT_SCHEDULE"]["stats-cache-hourly-generation"]
    assert entry["task"] == "invenio_stats_dashboard.tasks.cache_tasks.generate_cached_responses_task"


def test_aggregation_beat_entry_at_minute_40_with_all_eight_series():
    """Off by default (upstream); when on: hourly at :40, upstream's four series first,
    then the created and published bases (R5), each snapshot after its delta."""
    app = _bare_app(COMMUNITY_STATS_SCHEDULED_AGG_TASKS_ENABLED=True)
    InvenioStatsDashboard(app)
    entry = app.config["CELERY_BEAT_SCHEDULE"]["stats-aggregate-community-record-stats"]
    assert entry["task"] == ("invenio_stats_dashboard.tasks.aggregation_tasks."
                             "aggregate_community_record_stats")
    assert entry["schedule"].minute == {40} and len(entry["schedule"].hour) == 24
    assert entry["args"] == ((
        "community-usage-delta-agg", "community-records-delta-added-agg",
        "community-records-snapshot-added-agg", "community-usage-snapshot-agg",
        "community-records-delta-created-agg", "community-records-snapshot-created-agg",
        "community-records-delta-published-agg", "community-records-snapshot-published-agg"),)


def test_registries_merge_instance_overrides():
    app = _bare_app(
        STATS_AGGREGATIONS={"stock-agg": {"templates": "a"}},
        STATS_QUERIES={"stock-q": {}},
        COMMUNITY_STATS_AGGREGATIONS={"mine-agg": {"templates": "b"}},
        COMMUNITY_STATS_QUERIES={"mine-q": {}, "stock-q": {"ours": True}},
    )
    InvenioStatsDashboard(app)
    assert set(app.config["STATS_AGGREGATIONS"]) == {"stock-agg", "mine-agg"}
    assert app.config["STATS_QUERIES"] == {"stock-q": {"ours": True}, "mine-q": {}}


def test_disabled_extension_merges_nothing():
    app = _bare_app(COMMUNITY_STATS_ENABLED=False, COMMUNITY_STATS_SCHEDULED_AGG_TASKS_ENABLED=True)
    InvenioStatsDashboard(app)
    assert "CELERY_BEAT_SCHEDULE" not in app.config
    assert "invenio-stats-dashboard" not in app.extensions
    assert app.config["STATS_DASHBOARD_MENU_ENABLED"] is True  # defaults still set


def test_proxies_resolve_the_services(services):
    from invenio_stats_dashboard.proxies import (
        current_community_stats,
        current_community_stats_service,
        current_event_reindexing_service,
    )
    from invenio_stats_dashboard.services.service import CommunityStatsService
    from invenio_stats_dashboard.services.usage_reindexing import EventReindexingService

    assert current_community_stats._get_current_object() is services.extensions[
        "invenio-stats-dashboard"
    ]
    assert isinstance(current_community_stats_service._get_current_object(),
                      CommunityStatsService)
    assert isinstance(current_event_reindexing_service._get_current_object(),
                      EventReindexingService)


def test_real_app_has_extension_and_blueprint(services):
    assert "invenio_stats_dashboard_api" in services.blueprints
    assert services.config["STATS_QUERIES"]  # stock RDM queries kept


def test_cli_group_is_registered_under_invenio(services):
    from invenio_app.cli import cli as invenio_cli
    from click.testing import CliRunner
    from flask.cli import ScriptInfo

    runner = CliRunner()
    result = runner.invoke(
        invenio_cli, ["community-stats", "--help"], obj=ScriptInfo(create_app=lambda: services)
    )
    assert result.exit_code == 0, result.output
    assert "Community and global statistics" in result.output
