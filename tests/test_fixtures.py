# Part of invenio-stats-dashboard (MIT License).
"""Smoke tests of the test bed: each fixture lands in PostgreSQL and OpenSearch.

Expected values come from the fixtures' own inputs (what we asked for), read
back independently from the database rows and the search indices.
"""

from collections import Counter

from invenio_access.permissions import system_identity
from invenio_communities.communities.records.models import CommunityMetadata
from invenio_communities.proxies import current_communities
from invenio_rdm_records.proxies import current_rdm_records_service
from invenio_rdm_records.records.models import RDMRecordMetadata
from invenio_requests.records.models import RequestMetadata
from invenio_search.proxies import current_search_client
from invenio_search.utils import prefix_index

from invenio_stats_dashboard.demo import rdm


def _search_record(recid):
    current_rdm_records_service.indexer.refresh()
    hits = current_search_client.search(
        index=prefix_index("rdmrecords-records"),
        body={"query": {"term": {"id": recid}}},
    )["hits"]["hits"]
    assert len(hits) == 1
    return hits[0]["_source"]


def _parent_communities(recid):
    """Community ids on the parent, read from the database row."""
    record = current_rdm_records_service.record_cls.pid.resolve(recid)
    return set(record.parent.communities.ids)


def test_users(users):
    from invenio_accounts.models import User

    emails = {u.email for u in User.query.all()}
    assert {"owner@example.org", "depositor@example.org", "outsider@example.org"} <= emails
    assert all(u.active for u in users.values())


def test_vocabularies(services):
    from invenio_stats_dashboard.demo import vocabularies as v

    count = current_search_client.count(
        index=prefix_index("vocabularies"),
        body={"query": {"term": {"type.id": "languages"}}},
    )["count"]
    assert count == len(v.LANGUAGES)
    assert current_search_client.count(index=prefix_index("affiliations"))["count"] == len(
        v.AFFILIATIONS
    )
    assert current_search_client.count(index=prefix_index("funders"))["count"] == len(v.FUNDERS)


def test_communities(communities):
    rows = {str(r.id): r for r in CommunityMetadata.query.all()}
    for key, item in communities.items():
        assert item.id in rows
    visibility = {k: c.data["access"]["visibility"] for k, c in communities.items()}
    assert visibility == {"alpha": "public", "beta": "public", "secret": "restricted"}
    current_communities.service.indexer.refresh()
    indexed = current_search_client.count(
        index=prefix_index("communities"),
        body={"query": {"terms": {"id": [c.id for c in communities.values()]}}},
    )["count"]
    assert indexed == 3


def test_records_with_and_without_files(records):
    expected_files = {"plain": 0, "one_file": 1, "two_files": 2, "rich": 0}
    for key, item in records.items():
        doc = _search_record(item.id)
        assert doc["is_published"] is True
        assert len(doc.get("files", {}).get("entries", [])) == expected_files[key]
        row = RDMRecordMetadata.query.get(
            current_rdm_records_service.record_cls.pid.resolve(item.id).id
        )
        assert row.json["files"]["enabled"] is bool(expected_files[key])
    rich = _search_record(records["rich"].id)["metadata"]
    assert {lang["id"] for lang in rich["languages"]} == {"eng", "fra"}
    assert rich["funding"][0]["funder"]["id"] == "00k4n6c32"
    assert rich["creators"][0]["affiliations"][0]["id"] == "01ggx4157"
    assert rich["contributors"][0]["affiliations"][0]["id"] == "05gq02987"


def test_versions_share_a_parent(versioned_record):
    docs = [_search_record(v.id) for v in versioned_record]
    assert len({d["parent"]["id"] for d in docs}) == 1
    assert [d["versions"]["index"] for d in docs] == [1, 2, 3]
    assert [d["versions"]["is_latest"] for d in docs] == [False, False, True]
    entries = {e["key"]: e for e in docs[2]["files"]["entries"]}
    assert entries["v3.txt"]["size"] == len(b"third")


def test_direct_add_and_remove(make_record, identities, communities):
    owner = identities["owner"]
    alpha, beta = communities["alpha"].id, communities["beta"].id
    record = make_record(community_id=alpha)
    assert _parent_communities(record.id) == {alpha}
    rdm.add_to_community(owner, record.id, beta)
    assert _parent_communities(record.id) == {alpha, beta}
    rdm.remove_from_community(owner, record.id, alpha)
    assert _parent_communities(record.id) == {beta}
    assert _search_record(record.id)["parent"]["communities"]["ids"] == [beta]


def test_inclusion_request_accepted(make_record, identities, communities):
    depositor, owner = identities["depositor"], identities["owner"]
    beta = communities["beta"].id
    record = make_record(identity=depositor)
    request_ids = rdm.add_to_community(depositor, record.id, beta, require_review=True)
    assert len(request_ids) == 1
    assert _parent_communities(record.id) == set()  # waits for review
    rdm.accept_request(owner, request_ids[0])
    assert _parent_communities(record.id) == {beta}
    row = RequestMetadata.query.get(request_ids[0])
    assert row.json["status"] == "accepted"
    assert row.json["type"] == "community-inclusion"


def test_restricted_community_direct_add(make_record, identities, communities):
    secret = communities["secret"].id
    record = make_record(community_id=secret, record_access="restricted")
    assert _parent_communities(record.id) == {secret}


def test_bulk_add(make_record, communities):
    beta = communities["beta"].id
    made = [make_record() for _ in range(3)]
    rdm.bulk_add(beta, [r.id for r in made])
    for r in made:
        assert beta in _parent_communities(r.id)


def test_versions_move_with_parent(versioned_record, identities, communities):
    owner, alpha = identities["owner"], communities["alpha"].id
    rdm.add_to_community(owner, versioned_record[-1].id, alpha)
    for version in versioned_record:
        assert alpha in _search_record(version.id)["parent"]["communities"]["ids"]


def test_delete_and_restore(make_record):
    record = make_record(files={"x.bin": b"\x00" * 10})
    rdm.delete_record(record.id)
    doc = _search_record(record.id)
    assert doc["deletion_status"] == "D"
    assert doc["tombstone"]["removal_reason"]["id"] == "spam"
    rdm.restore_record(record.id)
    assert _search_record(record.id)["deletion_status"] == "P"


def test_backdate_record(make_record):
    from datetime import datetime

    record = make_record()
    rdm.backdate_record(record.id, datetime(2023, 5, 17, 12, 0, 0))
    current_rdm_records_service.indexer.refresh()
    assert _search_record(record.id)["created"].startswith("2023-05-17T12:00:00")
    item = current_rdm_records_service.read(system_identity, record.id)
    assert item.data["created"].startswith("2023-05-17T12:00:00")


def test_legacy_events_land_in_monthly_indices(legacy_events):
    planned, expected = legacy_events
    assert sum(expected.values()) == sum(len(e) for e in planned.values()) > 300
    stats_types = {"record-view": "record-view", "file-download": "file-download"}
    found = Counter()
    for event_type, stem in stats_types.items():
        pattern = prefix_index(f"events-stats-{stem}-*")
        for row in current_search_client.cat.indices(index=pattern, format="json"):
            month = row["index"][-7:]
            found[(event_type, month)] = int(
                current_search_client.count(index=row["index"])["count"]
            )
    assert found == expected
    # Stock monthly naming and the stock read alias are in place.
    aliases = current_search_client.indices.get_alias(
        index=prefix_index("events-stats-record-view-*")
    )
    assert all(prefix_index("events-stats-record-view") in v["aliases"]
               for v in aliases.values())


def test_legacy_events_are_anonymised_with_country(legacy_events):
    sample = current_search_client.search(
        index=prefix_index("events-stats-file-download-*"), body={"size": 20}
    )["hits"]["hits"]
    assert sample
    for hit in sample:
        src = hit["_source"]
        assert "ip_address" not in src and "session_id" not in src
        assert src["visitor_id"] and src["unique_id"] == f"{src['bucket_id']}_{src['file_id']}"
        assert src["file_key"] and src["size"] > 0
    countries = {h["_source"].get("country") for h in sample}
    assert countries - {None}
