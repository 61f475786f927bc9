# Part of invenio-stats-dashboard (MIT License).
"""MetadataExtractor: memory bounded by the groups in flight, not by a month's records.

The memory itself is measured in ``benchmarks/migration_memory_benchmark.py``
(peak RSS flat at 50,000 distinct records); here, the bound behind it.
"""

from concurrent.futures import ThreadPoolExecutor

from invenio_stats_dashboard.config.subcounts import COMMUNITY_STATS_SUBCOUNTS
from invenio_stats_dashboard.services.enrichment import CACHED_RECORDS, MetadataExtractor


def record(n):
    return {"metadata": {"publisher": f"Press {n}", "resource_type": {"id": f"type-{n}"}},
            "access": {"status": "open"}}


def test_cache_keeps_at_most_two_groups_of_records():
    extractor = MetadataExtractor(COMMUNITY_STATS_SUBCOUNTS)
    distinct = CACHED_RECORDS + 500
    for n in range(distinct):
        assert extractor.extract_fields(record(n), f"r{n}")["publisher"] == f"Press {n}"
    assert extractor.get_cache_stats() == {"hits": 0, "misses": distinct,
                                           "size": CACHED_RECORDS}
    # The most recent records are the ones kept.
    assert extractor.extract_fields(record(distinct - 1), f"r{distinct - 1}")
    assert extractor.extract_fields(record(0), "r0")
    assert extractor.get_cache_stats() == {"hits": 1, "misses": distinct + 1,
                                           "size": CACHED_RECORDS}


def test_cache_is_shared_safely_by_groups_in_flight():
    extractor = MetadataExtractor(COMMUNITY_STATS_SUBCOUNTS, cache_size=50)

    def group(start):
        return [extractor.extract_fields(record(n), f"r{n}")["resource_type"]["id"]
                for n in range(start, start + 400)]

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(group, range(0, 1600, 100)))
    assert results == [[f"type-{n}" for n in range(s, s + 400)] for s in range(0, 1600, 100)]
    stats = extractor.get_cache_stats()
    assert stats["size"] == 50 and stats["hits"] + stats["misses"] == 16 * 400


def test_a_record_published_a_moment_ago_is_found_with_its_metadata(services, identities):
    """Publishing indexes without a refresh: the migration and the live indexer must
    still find the record's metadata (CI on InvenioRDM 14 lost it for a second)."""
    from invenio_search.proxies import current_search_client

    from invenio_stats_dashboard.demo.rdm import publish_record, record_data, without_refresh
    from invenio_stats_dashboard.search_indices.names import records_index
    from invenio_stats_dashboard.services.enrichment import records_metadata

    index = records_index()
    current_search_client.indices.put_settings(index=index,
                                               body={"index.refresh_interval": "-1"})
    try:
        with without_refresh():
            recid = publish_record(identities["owner"], record_data(
                "Just published", "2024-03-01", publisher="Moment Press")).id
        hits = current_search_client.search(index=index, body={
            "query": {"term": {"id": recid}}})["hits"]["hits"]
        assert hits == []  # not searchable yet: what the lookup must cope with
        found = records_metadata([recid, "nosuc-hrec1"])
    finally:
        current_search_client.indices.put_settings(index=index,
                                                   body={"index.refresh_interval": None})
    assert list(found) == [recid]
    assert found[recid]["metadata"]["publisher"] == "Moment Press"
