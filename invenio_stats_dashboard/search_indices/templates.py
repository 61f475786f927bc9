# Part of invenio-stats-dashboard (MIT License).
"""Registration of our composable index templates, whatever the instance's flags.

Our templates are composable index templates. invenio-stats hands template
packages to invenio-search as *legacy* templates unless the instance sets
``STATS_REGISTER_INDEX_TEMPLATES = True`` — and setting it makes InvenioRDM's
own (legacy-format) stats templates fail. So we register our packages with
invenio-search's index templates ourselves (``invenio index init`` then puts
them), put them at start-up, and give invenio-stats an empty template package
when the flag is off, so nothing is put through the wrong API.
"""

import json
import logging

from flask import current_app
from invenio_search.proxies import current_search
from invenio_search.utils import build_alias_name, prefix_index

logger = logging.getLogger(__name__)

#: Holds no template; used as the invenio-stats ``templates`` value when
#: ``STATS_REGISTER_INDEX_TEMPLATES`` is off (see module docstring).
EMPTY_PACKAGE = "invenio_stats_dashboard.search_indices.search_templates.registered_by_extension"


#: Enriched view/download event templates (v2.0.0, priority 110 over the stock ones).
EVENT_TEMPLATE_PACKAGES = [
    "invenio_stats_dashboard.search_indices.search_templates.record_view",
    "invenio_stats_dashboard.search_indices.search_templates.file_download",
]


def template_packages(config):
    """Our template packages: enriched events plus those named by the aggregations."""
    entries = (config.get("COMMUNITY_STATS_AGGREGATIONS") or {}).values()
    return EVENT_TEMPLATE_PACKAGES + [e["templates"] for e in entries if e.get("templates")]


def for_invenio_stats(config, entries):
    """Copies of registry ``entries`` whose templates invenio-stats may put itself."""
    if config.get("STATS_REGISTER_INDEX_TEMPLATES"):
        return dict(entries)
    return {name: {**entry, "templates": EMPTY_PACKAGE} for name, entry in entries.items()}


def register_index_templates(packages):
    """Add ``packages`` to invenio-search's index templates; returns their names."""
    names = {}
    for package in packages:
        registered = current_search.register_templates(package)
        current_search.index_templates.update(registered)
        names.update(registered)
    return names


def put_index_templates(packages=None, strict=False):
    """Create-or-replace our index templates in OpenSearch.

    ``strict`` raises on failure (before writes that need them); otherwise
    failures are logged, so a cluster that is down never stops the app.
    """
    everything = packages is None
    packages = template_packages(current_app.config) if everything else packages
    try:
        if everything:  # the series' templates are built from the subcount config
            from ..aggregations.mappings import put_templates

            put_templates(current_search.client)
        for name, path in register_index_templates(packages).items():
            with open(path, encoding="utf-8") as fh:
                body = fh.read().replace("__SEARCH_INDEX_PREFIX__", prefix_index(""))
            current_search.client.indices.put_index_template(
                name=build_alias_name(name), body=json.loads(body))
    except Exception:
        if strict:
            raise
        logger.exception("Could not put invenio-stats-dashboard index templates")
