# Part of invenio-stats-dashboard (MIT License).
"""InvenioRDM 12 (patched), 13 and 14: every membership change reaches the log.

On 14 the record-communities service renamed its removal hook, and removals
silently went unrecorded; the suite runs on each release (``ISD_RDM``). The
first test drives every kind of change through the installed services at
instants chosen here (time-machine) and expects exactly the documents the
counting rules prescribe, each at its instant.
"""

from datetime import datetime, timezone

import pytest
import time_machine
from invenio_search.proxies import current_search_client

from invenio_stats_dashboard import compat
from invenio_stats_dashboard.demo import rdm
from invenio_stats_dashboard.services import components
from invenio_stats_dashboard.services import events_log as log

#: One instant per step, all in the past (the log's yearly index is 2025's).
T = {step: datetime(2025, 3, day, 9, 30, 15, 250000, tzinfo=timezone.utc)
     for day, step in enumerate(["publish", "request", "accept", "direct add", "new version",
                                 "removal", "deletion", "restoration"], start=3)}


def at(step):
    return time_machine.travel(T[step], tick=False)


def log_documents(*record_ids):
    """``{(record, community, type, event_date)}`` plus the deletion flags."""
    log.refresh()
    hits = current_search_client.search(index=log.alias_name(), body={
        "query": {"terms": {"record_id": list(record_ids)}}, "size": 1000})["hits"]["hits"]
    return [h["_source"] for h in hits]


def test_every_membership_change_is_logged_at_its_instant(make_record, identities, communities):
    alpha, beta = communities["alpha"].id, communities["beta"].id
    owner = identities["owner"]  # owns the record and both communities
    with at("publish"):
        v1 = make_record()
    with at("request"):
        request_id = rdm.add_to_community(owner, v1.id, beta, require_review=True)[0]
    with at("accept"):
        rdm.accept_request(owner, request_id)
    with at("direct add"):
        rdm.add_to_community(owner, v1.id, alpha)
    with at("new version"):
        v2 = rdm.new_version(owner, v1.id, publication_date="2025-03-01")
    with at("removal"):
        rdm.remove_from_community(owner, v1.id, alpha)
    with at("deletion"):
        rdm.delete_record(v2.id)
    with at("restoration"):
        rdm.restore_record(v2.id)

    def docs(record, *changes):
        return {(record, community, kind, log.iso(T[step])) for step, community, kind in changes}

    expected = docs(v1.id, ("publish", "global", "added"), ("accept", beta, "added"),
                    ("direct add", alpha, "added"), ("removal", alpha, "removed")) | docs(
        v2.id, ("new version", "global", "added"), ("new version", beta, "added"),
        ("new version", alpha, "added"), ("removal", alpha, "removed"),
        ("deletion", "global", "removed"), ("deletion", beta, "removed"),
        ("restoration", "global", "added"), ("restoration", beta, "added"))
    found = log_documents(v1.id, v2.id)
    assert {(d["record_id"], d["community_id"], d["event_type"], d["event_date"])
            for d in found} == expected
    assert len(found) == len(expected)  # nothing twice
    assert not any(d["is_deleted"] or d["deleted_date"] for d in found)  # restored


def test_deleted_version_carries_its_deletion_instant(make_record, identities):
    with at("publish"):
        record = make_record()
    with at("deletion"):
        rdm.delete_record(record.id)
    found = log_documents(record.id)
    assert {(d["event_type"], d["event_date"]) for d in found} == {
        ("added", log.iso(T["publish"])), ("removed", log.iso(T["deletion"]))}
    assert all(d["is_deleted"] and d["deleted_date"] == log.iso(T["deletion"]) for d in found)


def test_installed_services_call_the_hooks_our_components_implement(services):
    """The start-up check (``compat.hook_problems``) finds nothing on this release."""
    assert compat.hook_problems(vars(components)) == []


def test_a_renamed_hook_is_reported():
    """What 14 did to ``remove_community``: the check names the lost change."""

    class Renamed:
        def remove(self):
            self.run_components("remove_community_everywhere", record=None)

    assert compat.called_hooks(Renamed) == {"remove_community_everywhere"}
    changes = compat.MEMBERSHIP_HOOKS["RecordCommunityEventTrackingComponent"]
    component = components.RecordCommunityEventTrackingComponent
    assert not any(h in compat.called_hooks(Renamed) and hasattr(component, h)
                   for h in changes["removal"])


def test_a_service_without_a_components_setting_is_detected():
    """Unpatched InvenioRDM 12: fixed components, nothing of ours would run."""
    from invenio_records_resources.services.base.config import FromConfig

    class Fixed:
        components = [object]

    class Configured(Fixed):
        components = FromConfig("SOME_SERVICE_COMPONENTS", default=[object])

    assert compat.components_setting(Fixed) is None
    assert compat.components_setting(Configured) == ("SOME_SERVICE_COMPONENTS", [object])


def test_components_join_every_service_without_dropping_its_defaults(services):
    """Ours are appended; the list invenio-requests 14 ships (comment-file components)
    survives although our extension is initialised first."""
    import invenio_requests.config as requests_config

    for name, (config_path, _service) in compat.SERVICES.items():
        key, _default = compat.components_setting(compat.load(config_path))
        assert services.config[key][-1] is getattr(components, name)
    shipped = getattr(requests_config, "REQUESTS_EVENTS_SERVICE_COMPONENTS", [])
    assert services.config["REQUESTS_EVENTS_SERVICE_COMPONENTS"] == [
        *shipped, components.CommunityAcceptedEventComponent]


@pytest.mark.parametrize("setting", ["RedisCache", "flask_caching.backends.RedisCache"])
def test_cache_type_names_valid_on_every_release(setting):
    """Flask-Caching 2 (InvenioRDM 14) rejects ``"redis"``; these work everywhere."""
    from flask import Flask
    from flask_caching import Cache

    app = Flask("t")
    app.config.update(CACHE_TYPE=setting, CACHE_REDIS_URL="redis://127.0.0.1:1/0")
    Cache(app)
