# Part of invenio-stats-dashboard (MIT License).
"""The Flask extension: config merging, registries and start-up safety nets.

Unlike upstream (config.md §1 quirk), everything here is built from the
*merged* ``app.config``, so an instance's ``invenio.cfg`` overrides of the beat
schedules, aggregations and queries take effect.
"""

import logging

from . import config as defaults
from .proxies import EXTENSION_KEY

logger = logging.getLogger(__name__)

#: Config-name prefixes defaulted from our defaults module into ``app.config``.
DEFAULTED_PREFIXES = (
    "STATS_DASHBOARD_",
    "COMMUNITY_STATS_",
    "STATS_CACHE_",
    "STATS_AGG_REGISTRY_",
    "STATS_DATA_SERIES_",
)


class InvenioStatsDashboard:
    """invenio-stats-dashboard extension."""

    def __init__(self, app=None):
        """Extension initialization."""
        self.service = None
        self.event_reindexing_service = None
        if app:
            self.init_app(app)

    def init_app(self, app):
        """Flask application initialization."""
        self.init_config(app)
        if not app.config["COMMUNITY_STATS_ENABLED"]:
            return
        # The stats and reindexing services arrive with their issues; the
        # proxies raise a clear RuntimeError until then.
        app.extensions[EXTENSION_KEY] = self

    def init_config(self, app):
        """Default our settings, then merge them into other packages' registries."""
        for name in dir(defaults.config):
            if name.startswith(DEFAULTED_PREFIXES):
                app.config.setdefault(name, getattr(defaults.config, name))

        if not app.config["COMMUNITY_STATS_ENABLED"]:
            logger.info("invenio-stats-dashboard disabled (COMMUNITY_STATS_ENABLED)")
            return

        merge_beat_schedule(app.config)
        merge_stats_registries(app.config)


def merge_beat_schedule(config):
    """Add our beat entries, read from the merged config, when their flags are on."""
    schedule = dict(config.get("CELERY_BEAT_SCHEDULE") or {})
    if config["COMMUNITY_STATS_SCHEDULED_AGG_TASKS_ENABLED"]:
        schedule.update(config["COMMUNITY_STATS_CELERYBEAT_AGG_SCHEDULE"])
    if config["COMMUNITY_STATS_SCHEDULED_CACHE_TASKS_ENABLED"]:
        schedule.update(config["COMMUNITY_STATS_CELERYBEAT_CACHE_SCHEDULE"])
    config["CELERY_BEAT_SCHEDULE"] = schedule


def merge_stats_registries(config):
    """Merge our aggregations and queries into invenio-stats' registries.

    Our entries win on equal names; the instance's other entries are kept.
    """
    for target, ours in (
        ("STATS_AGGREGATIONS", "COMMUNITY_STATS_AGGREGATIONS"),
        ("STATS_QUERIES", "COMMUNITY_STATS_QUERIES"),
    ):
        merged = dict(config.get(target) or {})
        merged.update(config.get(ours) or {})
        config[target] = merged


def finalize_app(app):
    """Register menus and make sure our index templates exist in OpenSearch."""
    if app.config.get("COMMUNITY_STATS_ENABLED"):
        register_menus(app)
    put_aggregation_templates(app)


def register_menus(app):
    """Register the menu items whose target pages exist in this app.

    Registering a menu item for an endpoint the app does not serve would break
    every rendered page (``url_for`` fails), so items are added only for
    endpoints present (the API app has none).
    """
    for prefix, register in (
        ("STATS_DASHBOARD_", _register_main_menu),
        ("STATS_DASHBOARD_COMMUNITY_", _register_community_menu),
    ):
        if not app.config.get(f"{prefix}MENU_ENABLED"):
            continue
        custom = app.config.get(f"{prefix}MENU_REGISTRATION_FUNCTION")
        if custom is not None:
            if callable(custom):
                custom(app)
                continue
            logger.warning("%sMENU_REGISTRATION_FUNCTION is not callable", prefix)
        if app.config.get(f"{prefix}MENU_ENDPOINT") in app.view_functions:
            register(app)


def _register_main_menu(app):
    from flask_menu import current_menu

    with app.app_context():
        current_menu.submenu("main.stats").register(
            endpoint=app.config["STATS_DASHBOARD_MENU_ENDPOINT"],
            text=app.config["STATS_DASHBOARD_MENU_TEXT"],
            order=app.config["STATS_DASHBOARD_MENU_ORDER"],
        )


def _register_community_menu(app):
    from flask_menu import current_menu

    def _can_read(**kwargs):
        from flask import g, request

        from invenio_communities.proxies import current_communities

        pid_value = (request.view_args or {}).get("pid_value")
        if not pid_value:
            return False
        try:
            community = current_communities.service.read(g.identity, pid_value)
        except Exception:
            return False
        return current_communities.service.check_permission(
            g.identity, "read", community=community._record
        )

    with app.app_context():
        current_menu.submenu("communities.stats").register(
            endpoint=app.config["STATS_DASHBOARD_COMMUNITY_MENU_ENDPOINT"],
            text=app.config["STATS_DASHBOARD_COMMUNITY_MENU_TEXT"],
            order=app.config["STATS_DASHBOARD_COMMUNITY_MENU_ORDER"],
            expected_args=["pid_value"],
            icon="chart line",
            visible_when=_can_read,
        )


def put_aggregation_templates(app):
    """Create-or-replace the index templates of our aggregations.

    An instance that already has a search cluster never re-runs ``index
    init``; this puts our templates anyway. Failures are logged, not raised,
    so a missing cluster never prevents the app from starting.
    """
    aggregations = app.config.get("COMMUNITY_STATS_AGGREGATIONS") or {}
    modules = [a["templates"] for a in aggregations.values() if a.get("templates")]
    if not modules:
        return
    try:
        from invenio_search.proxies import current_search

        with app.app_context():
            for module in modules:
                for name, path in current_search.register_templates(module).items():
                    current_search.index_templates[name] = path
                    current_search._put_template(
                        name,
                        path,
                        current_search.client.indices.put_index_template,
                        ignore=[400, 409],
                    )
    except Exception:  # the cluster may be down at start-up; never fatal
        logger.exception("Could not put invenio-stats-dashboard index templates")
