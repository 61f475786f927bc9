# Part of invenio-stats-dashboard (MIT License).
"""``COMMUNITY_STATS_ENABLED = False`` leaves the cluster InvenioRDM's stock one.

A second real API app, disabled, on this run's services under its own index
prefix: neither its finalisation nor ``invenio index init`` may install our
templates, so a monthly event index created under it has the stock mapping —
which is what an instance's legacy months look like before installation.
"""

import pytest
from invenio_search.proxies import current_search, current_search_client

from legacy_indices import stock_mapping

OURS = ("record-view-v2.0.0", "file-download-v2.0.0", "stats-community-events-v1.0.0")


@pytest.fixture(scope="module")
def disabled_app(services, create_app, app_config):
    """The API app with the extension disabled (finalisation has run).

    Its prefix extends the run's, so the run's clean-up deletes what it makes.
    """
    prefix = f"{app_config['SEARCH_INDEX_PREFIX']}off-"
    return create_app(**{**app_config, "SEARCH_INDEX_PREFIX": prefix,
                         "COMMUNITY_STATS_ENABLED": False})


def test_disabled_extension_installs_no_template_component_or_enrichment(disabled_app):
    from invenio_stats_dashboard.services.components import RecordCommunityEventComponent

    prefix = disabled_app.config["SEARCH_INDEX_PREFIX"]
    ours = {f"{prefix}{name}" for name in OURS}

    def index_templates():
        found = current_search_client.indices.get_index_template(name=f"{prefix}*", ignore=[404])
        return {t["name"] for t in found.get("index_templates", [])}

    with disabled_app.app_context():
        assert not index_templates() & ours  # app finalisation put none of ours
        # `invenio index init` puts what the packages registered: stock only.
        list(current_search.put_templates(ignore=[400]))
        list(current_search.put_index_templates(ignore=[400]))
        assert not index_templates() & ours
        for stem in ("record-view", "file-download"):
            name = f"{prefix}events-stats-{stem}-2020-01"  # a month recorded before installation
            current_search_client.indices.create(index=name)
            mapping = current_search_client.indices.get_mapping(index=name)[name]["mappings"]
            assert mapping == stock_mapping(stem)
            assert "community_ids" not in mapping["properties"]
            assert current_search_client.indices.exists_alias(name=f"{prefix}events-stats-{stem}",
                                                              index=name)
        config = disabled_app.config
        assert RecordCommunityEventComponent not in config.get(
            "RDM_RECORDS_SERVICE_COMPONENTS", [])
        assert "invenio_stats_dashboard" not in repr(config["STATS_EVENTS"])
