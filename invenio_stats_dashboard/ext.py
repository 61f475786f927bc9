# Part of invenio-stats-dashboard (MIT License).
"""The Flask extension: config merging, registries and start-up safety nets.

Unlike upstream (config.md §1 quirk), everything here is built from the
*merged* ``app.config``, so an instance's ``invenio.cfg`` overrides of the beat
schedules, aggregations and queries take effect.
"""

import logging
from types import SimpleNamespace

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
        from .services.service import CommunityStatsService
        from .services.usage_reindexing import EventReindexingService

        self.service = CommunityStatsService(app)
        self.event_reindexing_service = EventReindexingService(app)
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
        merge_stats_events(app.config)
        merge_stats_registries(app.config)
        merge_service_components(app.config)
        merge_community_custom_fields(app.config)


def merge_beat_schedule(config):
    """Add our beat entries, read from the merged config, when their flags are on."""
    schedule = dict(config.get("CELERY_BEAT_SCHEDULE") or {})
    if config["COMMUNITY_STATS_SCHEDULED_AGG_TASKS_ENABLED"]:
        schedule.update(config["COMMUNITY_STATS_CELERYBEAT_AGG_SCHEDULE"])
    if config["COMMUNITY_STATS_SCHEDULED_CACHE_TASKS_ENABLED"]:
        schedule.update(config["COMMUNITY_STATS_CELERYBEAT_CACHE_SCHEDULE"])
    config["CELERY_BEAT_SCHEDULE"] = schedule


def merge_stats_events(config):
    """Replace the stock ``record-view``/``file-download`` entries with enriched ones.

    Other ``STATS_EVENTS`` entries of the instance are kept.
    """
    from invenio_stats.processors import anonymize_user, flag_machines, flag_robots
    from invenio_rdm_records.resources.stats.event_builders import build_record_unique_id
    from invenio_stats.contrib.event_builders import build_file_unique_id

    from .search_indices.templates import EVENT_TEMPLATE_PACKAGES, for_invenio_stats

    stock = "invenio_rdm_records.resources.stats"
    ours = "invenio_stats_dashboard.search_indices.event_builders"
    indexer = f"{ours}.EnrichedEventsIndexer"
    view_pkg, download_pkg = EVENT_TEMPLATE_PACKAGES
    entries = {
        "file-download": {
            "templates": download_pkg,
            "event_builders": [f"{ours}.file_download_event_builder",
                               f"{stock}.check_if_via_api"],
            "cls": indexer,
            "params": {"preprocessors": [flag_robots, flag_machines, anonymize_user,
                                         build_file_unique_id]},
        },
        "record-view": {
            "templates": view_pkg,
            "event_builders": [f"{ours}.record_view_event_builder",
                               f"{stock}.check_if_via_api", f"{stock}.drop_if_via_api"],
            "cls": indexer,
            "params": {"preprocessors": [flag_robots, flag_machines, anonymize_user,
                                         build_record_unique_id]},
        },
    }
    events = dict(config.get("STATS_EVENTS") or {})
    events.update(for_invenio_stats(config, entries))
    config["STATS_EVENTS"] = events


def merge_stats_registries(config):
    """Merge our aggregations and queries into invenio-stats' registries.

    Our entries win on equal names; the instance's other entries are kept.
    """
    from .search_indices.templates import for_invenio_stats

    aggregations = dict(config.get("STATS_AGGREGATIONS") or {})
    aggregations.update(
        for_invenio_stats(config, config.get("COMMUNITY_STATS_AGGREGATIONS") or {})
    )
    config["STATS_AGGREGATIONS"] = aggregations
    queries = dict(config.get("STATS_QUERIES") or {})
    queries.update(config.get("COMMUNITY_STATS_QUERIES") or {})
    config["STATS_QUERIES"] = queries


def merge_service_components(config):
    """Attach our components to the RDM, requests and communities services.

    Which setting each service reads, and its default list, are detected
    (``compat``); a service without one (unpatched InvenioRDM 12) is skipped
    with a warning.
    """
    from . import compat
    from .services import components

    for name, (config_path, _service) in compat.SERVICES.items():
        setting = compat.components_setting(compat.load(config_path))
        if setting is None:
            logger.warning("%s reads no components setting; run apply_patches.sh "
                           "(InvenioRDM 12)", config_path)
            continue
        key, default = setting
        listed = list(config.get(key) or default)
        component = getattr(components, name)
        if component not in listed:
            listed.append(component)
        config[key] = listed


def merge_community_custom_fields(config):
    """Add the ``stats`` namespace and our two community custom fields."""
    from .records.communities.custom_fields.custom_fields import (
        COMMUNITY_STATS_FIELDS,
        COMMUNITY_STATS_FIELDS_UI,
    )

    config["COMMUNITIES_NAMESPACES"] = {**(config.get("COMMUNITIES_NAMESPACES") or {}),
                                        "stats": None}
    fields = list(config.get("COMMUNITIES_CUSTOM_FIELDS") or [])
    if not any(f.name == "stats:dashboard_enabled" for f in fields):
        fields = [*COMMUNITY_STATS_FIELDS, *fields]
    config["COMMUNITIES_CUSTOM_FIELDS"] = fields
    if config.get("STATS_DASHBOARD_COMMUNITY_OPT_IN"):
        sections = list(config.get("COMMUNITIES_CUSTOM_FIELDS_UI") or [])
        placed = any(f.get("field") == "stats:dashboard_enabled"
                     for s in sections for f in s.get("fields", []))
        if not placed:
            sections.insert(0, COMMUNITY_STATS_FIELDS_UI(SimpleNamespace(config=config)))
        config["COMMUNITIES_CUSTOM_FIELDS_UI"] = sections


def finalize_app(app):
    """Register menus and make sure our index templates exist in OpenSearch.

    A disabled extension installs nothing: no template (ours would shape every
    new monthly event index), so the cluster stays InvenioRDM's stock one.
    """
    if not app.config.get("COMMUNITY_STATS_ENABLED"):
        return
    register_menus(app)
    put_community_field_mappings(app)
    warn_about_missing_hooks()
    put_aggregation_templates(app)


def warn_about_missing_hooks():
    """Say at start-up when membership changes would go unrecorded (``compat``)."""
    from . import compat
    from .services import components

    try:
        problems = compat.hook_problems(vars(components))
    except Exception:  # a check only: never stops the app
        logger.exception("Could not check the service hooks")
        return
    for problem in problems:
        logger.warning("invenio-stats-dashboard: %s", problem)


def put_community_field_mappings(app):
    """Map our two community fields on an existing communities index.

    Until they are mapped, indexing any community that carries them fails
    (strict mapping), so we do not wait for the manual step 3a.
    """
    from .records.communities.custom_fields import custom_fields as cf

    try:
        with app.app_context():
            from invenio_search.proxies import current_search_client

            if current_search_client.indices.exists(index=cf.communities_index_name()):
                cf.put_community_field_mappings(
                    [f.name for f in cf.COMMUNITY_STATS_FIELDS])
    except Exception:  # the cluster may be down at start-up; never fatal
        logger.exception("Could not map the stats community custom fields")


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
    """Register and put our index templates (see ``search_indices.templates``)."""
    from .search_indices.templates import put_index_templates

    with app.app_context():
        put_index_templates()
