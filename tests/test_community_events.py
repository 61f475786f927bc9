# Part of invenio-stats-dashboard (MIT License).
"""Live membership events written by the service components (seed step 3b).

Each test performs real RDM service operations and compares the log with the
sequence that counting-rules M1–M5 prescribe, written down by hand.
"""

import pytest
from invenio_search.proxies import current_search_client

from invenio_stats_dashboard.demo import rdm
from invenio_stats_dashboard.services import events_log as log
from invenio_stats_dashboard.services.components.components import sync_parents


def events_of(record_id):
    """``[(community, type)]`` of a record in log order (event_date, write time)."""
    log.refresh()
    if not current_search_client.indices.exists_alias(name=log.alias_name()):
        return []
    hits = current_search_client.search(index=log.alias_name(), body={
        "query": {"term": {"record_id": record_id}}, "size": 1000,
        "sort": [{"event_date": "asc"}, {"timestamp": "asc"}],
    })["hits"]["hits"]
    return [(h["_source"]["community_id"], h["_source"]["event_type"]) for h in hits]


def docs_of(record_id):
    log.refresh()
    return [h["_source"] for h in current_search_client.search(
        index=log.alias_name(), body={"query": {"term": {"record_id": record_id}},
                                      "size": 1000})["hits"]["hits"]]


@pytest.fixture(scope="module")
def ids(communities):
    return {k: v.id for k, v in communities.items()}


def test_template_registered_with_prefix(services):
    name = log.alias_name().replace("stats-community-events", "stats-community-events-v1.0.0")
    tpl = current_search_client.indices.get_index_template(name=name)["index_templates"][0]
    body = tpl["index_template"]
    assert body["index_patterns"] == [log.alias_name() + "-*"]
    assert body["priority"] == 100
    props = body["template"]["mappings"]["properties"]
    assert set(props) == {"record_id", "community_id", "event_type", "event_date",
                          "record_created_date", "record_published_date", "is_deleted",
                          "deleted_date", "timestamp", "updated_timestamp"}


def test_first_publish_joins_global_only(make_record):
    record = make_record()
    assert events_of(record.id) == [("global", "added")]
    doc = docs_of(record.id)[0]
    assert doc["record_published_date"] == "2024-03-01"
    assert doc["is_deleted"] is False
    index = current_search_client.search(index=log.alias_name(), body={
        "query": {"term": {"record_id": record.id}}})["hits"]["hits"][0]["_index"]
    assert index == log.index_for(doc["event_date"])  # yearly index of the event


def test_add_remove_readd_sequence(make_record, identities, ids):
    owner = identities["owner"]
    record = make_record(community_id=ids["alpha"])
    rdm.add_to_community(owner, record.id, ids["beta"])
    rdm.remove_from_community(owner, record.id, ids["alpha"])
    rdm.add_to_community(owner, record.id, ids["alpha"])
    assert events_of(record.id) == [
        ("global", "added"), (ids["alpha"], "added"), (ids["beta"], "added"),
        (ids["alpha"], "removed"), (ids["alpha"], "added"),
    ]


def test_noop_repeats_write_nothing(make_record, identities, ids):
    record = make_record(community_id=ids["alpha"])
    before = events_of(record.id)
    parent = record._record.parent["id"]
    assert sync_parents([parent]) == {"added": 0, "removed": 0}
    with pytest.raises(Exception):  # RDM refuses to add twice
        rdm.add_to_community(identities["owner"], record.id, ids["alpha"])
    assert events_of(record.id) == before


def test_delete_and_restore_move_exactly_the_current_communities(
        make_record, identities, ids):
    owner = identities["owner"]
    record = make_record(community_id=ids["alpha"])
    rdm.add_to_community(owner, record.id, ids["beta"])
    rdm.remove_from_community(owner, record.id, ids["beta"])  # left before deletion
    rdm.delete_record(record.id)
    after_delete = events_of(record.id)
    assert after_delete[-2:] in (
        [("global", "removed"), (ids["alpha"], "removed")],
        [(ids["alpha"], "removed"), ("global", "removed")],
    )
    assert after_delete.count((ids["beta"], "removed")) == 1  # not touched again (M3)
    assert all(d["is_deleted"] for d in docs_of(record.id))
    rdm.restore_record(record.id)
    restored = events_of(record.id)
    assert sorted(restored[len(after_delete):]) == sorted(
        [("global", "added"), (ids["alpha"], "added")])
    assert not any(d["is_deleted"] for d in docs_of(record.id))
    assert all(d["deleted_date"] is None for d in docs_of(record.id))


def test_restore_skips_a_community_deleted_meanwhile(make_record, users, identities, ids):
    """M3: restoring re-adds the record's communities 'unless the community no longer
    exists' (RDM keeps a deleted community in the record's parent)."""
    from invenio_access.permissions import system_identity
    from invenio_communities.proxies import current_communities

    gamma = rdm.create_community(identities["owner"], f"{ids['alpha'][:8]}-gamma", "Gamma").id
    owner = rdm.make_identity(users["owner"])  # with its role in gamma (12 reads it from here)
    record = make_record(community_id=ids["alpha"])
    rdm.add_to_community(owner, record.id, gamma)
    rdm.delete_record(record.id)
    after_delete = events_of(record.id)
    assert (gamma, "removed") in after_delete
    current_communities.service.delete(system_identity, gamma, data={
        "removal_reason": {"id": "spam"}, "is_visible": False})
    rdm.restore_record(record.id)
    restored = events_of(record.id)[len(after_delete):]
    assert sorted(restored) == sorted([("global", "added"), (ids["alpha"], "added")])


def test_versions_join_and_leave_together(make_record, identities, ids):
    owner = identities["owner"]
    v1 = make_record(community_id=ids["beta"])
    v2 = rdm.new_version(owner, v1.id, publication_date="2025-01-01")
    assert events_of(v2.id) == [("global", "added"), (ids["beta"], "added")] or \
        sorted(events_of(v2.id)) == sorted([("global", "added"), (ids["beta"], "added")])
    rdm.remove_from_community(owner, v2.id, ids["beta"])
    for version in (v1, v2):  # upstream removed only the resolved version (G7)
        assert events_of(version.id)[-1] == (ids["beta"], "removed")


def test_inclusion_request_counts_at_acceptance(make_record, identities, ids):
    depositor, owner = identities["depositor"], identities["owner"]
    record = make_record(identity=depositor)
    request_ids = rdm.add_to_community(depositor, record.id, ids["beta"], require_review=True)
    assert events_of(record.id) == [("global", "added")]  # not at request creation (G6)
    rdm.accept_request(owner, request_ids[0])
    assert events_of(record.id) == [("global", "added"), (ids["beta"], "added")]


def test_bulk_add(make_record, ids):
    made = [make_record() for _ in range(2)]
    rdm.bulk_add(ids["alpha"], [r.id for r in made])
    for record in made:
        assert events_of(record.id) == [("global", "added"), (ids["alpha"], "added")]


def test_unknown_history_is_backfilled_before_a_removal(make_record, identities, ids):
    """A pair the log never saw (pre-install history) gets its 'added' first."""
    record = make_record(community_id=ids["alpha"])
    current_search_client.delete_by_query(
        index=log.alias_name(), body={"query": {"term": {"record_id": record.id}}},
        refresh=True)
    rdm.remove_from_community(identities["owner"], record.id, ids["alpha"])
    events = events_of(record.id)
    assert events == [("global", "added"), (ids["alpha"], "added"), (ids["alpha"], "removed")] \
        or sorted(events[:2]) == sorted([("global", "added"), (ids["alpha"], "added")])
    assert events[-1] == (ids["alpha"], "removed")


def test_custom_fields_registered(services, communities):
    from invenio_communities.proxies import current_communities

    names = [f.name for f in services.config["COMMUNITIES_CUSTOM_FIELDS"]]
    assert names[:2] == ["stats:dashboard_enabled", "stats:dashboard_layout"]
    assert services.config["COMMUNITIES_NAMESPACES"]["stats"] is None
    # Opt-in default: communities start with their dashboard disabled.
    item = current_communities.service.read(rdm.system_identity, communities["alpha"].id)
    assert item.data["custom_fields"]["stats:dashboard_enabled"] is False
    from invenio_stats_dashboard.records.communities.custom_fields.custom_fields import (
        communities_index_name,
    )

    mapping = current_search_client.indices.get_mapping(index=communities_index_name())
    props = next(iter(mapping.values()))["mappings"]["properties"]
    props = props["custom_fields"]
    assert props["properties"]["stats:dashboard_layout"] == {"type": "object", "enabled": False}, props
    assert props["properties"]["stats:dashboard_enabled"]["type"] == "boolean"


def test_custom_fields_cli_as_in_the_setup_guide(services):
    from invenio_stats_dashboard.cli.custom_fields_cli import custom_fields_cli

    runner = services.test_cli_runner()
    result = runner.invoke(custom_fields_cli, ["communities", "init", "stats:dashboard_layout"])
    assert result.exit_code == 0, result.output
    assert "stats:dashboard_layout" in result.output
    result = runner.invoke(custom_fields_cli, ["communities", "exists", "stats:dashboard_layout"])
    assert result.exit_code == 0 and "Field stats:dashboard_layout exists" in result.output
    result = runner.invoke(custom_fields_cli, ["communities", "exists", "stats:nothing"])
    assert result.exit_code == 1 and "Error: Field stats:nothing does not exist" in result.output
    result = runner.invoke(custom_fields_cli, ["communities", "init", "stats:nothing"])
    assert result.exit_code == 1
    assert "Error: Unknown community custom field: stats:nothing." in result.output


def test_community_submission_review_accepted(services, identities, ids):
    """Deposit form path: a draft submitted to a community, accepted by its curator."""
    from invenio_rdm_records.proxies import current_rdm_records_service as service
    from invenio_requests.proxies import current_requests_service

    depositor, owner = identities["depositor"], identities["owner"]
    draft = service.create(depositor, rdm.record_data("Submitted", "2024-05-05"))
    record = service.draft_cls.pid.resolve(draft.id, registered_only=False)
    service.review.create(depositor, {"receiver": {"community": ids["alpha"]},
                                      "type": "community-submission"}, record)
    request = service.review.submit(depositor, draft.id, {"payload": {"content": "please"}},
                                    require_review=True)
    assert events_of(draft.id) == []  # nothing is published yet
    current_requests_service.execute_action(owner, request.id, "accept")
    assert sorted(events_of(draft.id)) == sorted([("global", "added"), (ids["alpha"], "added")])
