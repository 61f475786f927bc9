# Part of invenio-stats-dashboard (MIT License).
"""The response cache on real Redis and OpenSearch: hits, invalidation, versions, stampede,
killed generations, registry flags, and the ``cache`` CLI.

The cached content is computed from the aggregation documents the engine
wrote for a planned membership history (test family of ``agg_family``);
expected contents come from the history's oracle (``agg_helpers.oracle``).
Entries are generated for the two record categories (``STATS_CACHE_CATEGORIES``).
"""

import gzip
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from invenio_stats_dashboard.aggregations.runner import aggregate, registry_client
from invenio_stats_dashboard.cli import cli
from invenio_stats_dashboard.services import cache_generation
from invenio_stats_dashboard.services.cache_generation import create, registry_status
from invenio_stats_dashboard.services.response_cache import ResponseCache
from invenio_stats_dashboard.tasks.cache_tasks import (
    generate_cached_responses_task,
    run_generation,
)
from invenio_stats_dashboard.utils.jobs import holder, redis_client

import agg_family
from agg_helpers import DELTA, SNAPSHOT, TODAY, D0, DAY, history_fixture, reset
from cache_helpers import (
    RECORD_CATEGORIES,
    compute,
    computed,
    counter_client,
    expected_set,
    reset_counter,
)

THIS, PAST = TODAY.year, TODAY.year - 1
SERIES = [DELTA, SNAPSHOT]
LOCK = "community_stats_cache_generation"
CHILD = str(Path(__file__).with_name("cache_child.py"))
history = history_fixture(["alpha", "beta", "global"])


@pytest.fixture(scope="module")
def app_config(app_config):
    """Two-second leases; generation covers the record categories (the test family's)."""
    app_config.update(STATS_DASHBOARD_LOCK_LEASE=2, STATS_CACHE_CATEGORIES=RECORD_CATEGORIES)
    return app_config


@pytest.fixture(scope="module")
def aggregated(history, communities):
    """The history aggregated to today (plus the record-less ``secret`` community)."""
    assert D0.year == PAST  # the history spans two calendar years
    history = dict(history, secret=str(communities["secret"].id))
    with pytest.MonkeyPatch.context() as mp:
        agg_family.register(mp.setitem)
        reset()
        report = aggregate(SERIES, history["communities"] + [history["secret"]],
                           until_caught_up=True)
        assert report["caught_up"], report
    return history


@pytest.fixture(autouse=True)
def clean(services):
    """Every test starts with an empty cache, counter, flags and generation lock."""
    ResponseCache().clear_all()
    reset_counter()
    registry = registry_client()
    for pattern in ("*_cache_*", "*_agg_updated_*"):
        for key in registry.scan_iter(match=pattern):
            registry.delete(key)
    redis_client().delete(f"lock:{LOCK}", "cachetest:child_started")


def get(cache, community_id, year, delay=0):
    return cache.get_or_create(community_id, year, "record-delta-category", "added",
                               lambda: compute("record-delta-category", community_id, year,
                                               delay=delay))


def test_second_request_is_served_from_the_cache(aggregated):
    cache = ResponseCache()
    alpha = aggregated["alpha"]
    first = get(cache, alpha, PAST)
    assert json.loads(first) == expected_set(aggregated["expected"], alpha, PAST)
    assert json.loads(first)["global"]["records"][0]["data"]  # not an empty year
    second = get(cache, alpha, PAST)
    assert second == first
    assert computed() == 1
    assert cache.counters() == {"hits": 1, "misses": 1, "computed": 1, "stored": 1,
                                "waited": 0}
    key = cache.key(alpha, PAST, "record-delta-category", "added")
    raw = cache.client.get(key)
    assert raw[:2] == b"\x1f\x8b" and gzip.decompress(raw) == first  # gap 15
    assert 364 * 86400 < cache.client.ttl(key) <= 365 * 86400
    [entry] = cache.entries()
    assert (entry["community_id"], entry["year"], entry["category"], entry["date_basis"],
            entry["complete"]) == (alpha, PAST, "record-delta-category", "added", True)
    # another basis is another entry
    assert key != cache.key(alpha, PAST, "record-delta-category", "created")


def test_a_run_rewriting_a_past_year_invalidates_exactly_that_year(aggregated):
    """Gap 14: the runner drops (beta, PAST) itself; other years and communities stay."""
    cache = ResponseCache()
    communities = aggregated["communities"]
    for community_id in communities:
        for year in (PAST, THIS):
            get(cache, community_id, year)
    assert len(cache.entries()) == 6 and computed() == 6
    beta, day = aggregated["beta"], D0 + 100 * DAY
    assert day.year == PAST
    with pytest.MonkeyPatch.context() as mp:
        agg_family.register(mp.setitem)
        report = aggregate([DELTA], [beta], day.isoformat(), day.isoformat(),
                           ignore_bookmark=True)
        assert report["results"][0]["status"] == "success", report
        left = {(e["community_id"], e["year"]) for e in cache.entries()}
        assert left == {(c, y) for c in communities for y in (PAST, THIS)} - {(beta, PAST)}
        assert registry_client().exists(f"{beta}_agg_updated_{PAST}")
        get(cache, beta, PAST)  # recomputed, the others are hits
        for community_id in communities:
            get(cache, community_id, THIS)
        assert computed() == 7
        # restore the snapshots (their bookmark went back with the delta's recompute)
        assert aggregate(SERIES, [beta], until_caught_up=True)["caught_up"]


def test_a_computation_overtaken_by_an_invalidation_stores_nothing(aggregated):
    cache = ResponseCache()
    alpha = aggregated["alpha"]
    before = cache.generation(alpha, PAST)
    assert cache.invalidate(alpha, [PAST]) == 0
    body = compute("record-delta-category", alpha, PAST)
    assert not cache.store(alpha, PAST, "record-delta-category", "added", body, True,
                           generation=before)
    assert cache.entries() == []
    assert cache.store(alpha, PAST, "record-delta-category", "added", body, True)
    assert len(cache.entries()) == 1


def test_a_subcount_config_change_misses_old_entries(aggregated, services):
    """Gap 13: the config version is part of the key; cleanup removes the old ones."""
    old = ResponseCache()
    alpha = aggregated["alpha"]
    get(old, alpha, PAST)
    subcounts = dict(services.config["COMMUNITY_STATS_SUBCOUNTS"])
    subcounts.pop(sorted(subcounts)[0])
    new = ResponseCache(config={**services.config, "COMMUNITY_STATS_SUBCOUNTS": subcounts})
    assert new.version != old.version
    get(new, alpha, PAST)
    assert computed() == 2
    assert {e["version"] for e in old.entries()} == {old.version, new.version}
    summary = create([alpha], [PAST], compute=compute, cache=new, cleanup=True)
    assert (summary["success"], summary["skipped_existing"], summary["cleaned"]) == (1, 1, 1)
    assert {(e["version"], e["category"]) for e in new.entries()} == {
        (new.version, c) for c in RECORD_CATEGORIES}


def test_concurrent_cold_requests_compute_once(aggregated, services):
    """Gap 16: eight threads miss the same key at once; one computes, the others wait."""
    beta, results, errors = aggregated["beta"], [], []
    barrier = threading.Barrier(8)

    def request():
        try:
            with services.app_context():
                cache = ResponseCache()
                barrier.wait()
                results.append(get(cache, beta, PAST, delay=1.0))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=request) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors and len(results) == 8
    assert computed() == 1
    assert len(set(results)) == 1
    assert json.loads(results[0]) == expected_set(aggregated["expected"], beta, PAST)
    counters = ResponseCache().counters()
    assert counters["misses"] + counters["hits"] == 8 and counters["computed"] == 1
    assert not list(ResponseCache().client.scan_iter(match="lock:*"))  # released


def test_incomplete_aggregation_is_kept_briefly_and_not_counted(aggregated):
    """§8.5: a year the bookmark does not reach yet is stored for the short TTL only."""
    cache = ResponseCache()
    alpha = aggregated["alpha"]
    assert cache.is_complete(alpha, PAST, "record-delta-category")
    assert not cache.is_complete(alpha, THIS + 1, "record-delta-category")
    assert not cache.is_complete(alpha, PAST, "usage-delta-category")  # never aggregated
    get(cache, alpha, THIS + 1)
    [entry] = cache.entries()
    assert entry["complete"] is False and 0 < entry["ttl"] <= 300
    summary = create([alpha], [PAST], compute=compute,
                     cache=ResponseCache(config={**cache.config, "STATS_CACHE_CATEGORIES": (
                         "record-delta-category", "usage-delta-category")}))
    assert (summary["success"], summary["skipped_incomplete"], summary["skipped"]) == (1, 1, 1)


def test_flag_lifecycle(aggregated):
    """Gaps 18, 19, 21, 22: first run, progress flags and the page's view of them."""
    registry = registry_client()
    alpha, beta, secret = aggregated["alpha"], aggregated["beta"], aggregated["secret"]
    everyone = aggregated["communities"] + [secret]
    reset()
    assert not list(registry.scan_iter(match="*_first_run*"))
    assert registry_status(alpha, registry) == {
        "agg_in_progress": False, "caching_in_progress": False, "first_run_incomplete": True}
    seen = []

    def during_aggregation(unit, *args):
        seen.append((unit.community_id, registry_status(unit.community_id, registry)))

    with pytest.MonkeyPatch.context() as mp:
        agg_family.register(mp.setitem)
        report = aggregate(SERIES, everyone, until_caught_up=True, progress=during_aggregation)
        assert report["caught_up"], report
    assert {c for c, status in seen if status["agg_in_progress"]} >= {alpha, beta, "global"}
    for community_id in everyone:
        assert registry.get(f"{community_id}_first_run") == b"in_progress"  # gap 21: global too
    assert registry.exists(f"{alpha}_agg_updated_{PAST}")
    assert not list(registry.scan_iter(match="*_agg_running"))
    status = registry_status(alpha, registry)
    assert status["agg_in_progress"] is False  # gap 18: agg_updated is not "running"
    # gap 19: secret has no records, so no bookmark; the run said so instead
    assert registry.get(f"{secret}_agg_empty_{DELTA}") == TODAY.isoformat().encode()
    cache = ResponseCache()
    assert cache.is_complete(secret, THIS, "record-delta-category")

    caching = []
    summary = create([alpha, secret, "global"], compute=compute, cache=cache,
                     progress=lambda done, total, label: caching.append(
                         registry_status(label.split("/")[0], registry)["caching_in_progress"]))
    assert caching and all(caching)
    assert summary["failed"] == 0 and summary["skipped_incomplete"] == 0
    assert sorted(summary["first_run_completed"]) == sorted([alpha, secret, "global"])
    for community_id in (alpha, secret, "global"):
        assert registry.get(f"{community_id}_first_run") == b"completed"
        assert registry_status(community_id, registry) == {
            "agg_in_progress": False, "caching_in_progress": False,
            "first_run_incomplete": False}
    assert registry.get(f"{beta}_first_run") == b"in_progress"  # not generated
    assert not registry.exists(f"{alpha}_agg_updated_{PAST}")  # regenerated: flag consumed
    assert registry.exists(f"{beta}_agg_updated_{PAST}")
    assert {(e["community_id"], e["year"]) for e in cache.entries()} == {
        (alpha, PAST), (alpha, THIS), ("global", PAST), ("global", THIS), (secret, THIS)}

    with pytest.MonkeyPatch.context() as mp:  # later runs never reset it
        agg_family.register(mp.setitem)
        aggregate(SERIES, everyone, until_caught_up=True)
    create([alpha], [THIS], compute=compute, cache=cache)
    assert registry.get(f"{alpha}_first_run") == b"completed"
    assert len(list(registry.scan_iter(match=f"{alpha}_first_run*"))) == 1
    registry.delete(f"{secret}_agg_empty_{DELTA}")  # without the run's word: incomplete
    assert not cache.is_complete(secret, THIS, "record-delta-category")
    registry.set(f"{secret}_agg_empty_{DELTA}", TODAY.isoformat())


def test_a_killed_generation_holds_its_lock_one_lease_at_most(aggregated, child_env,
                                                              monkeypatch):
    """A generation is SIGKILLed mid-computation; its lock expires after the 2 s lease."""
    monkeypatch.setenv("INVENIO_STATS_DASHBOARD_LOCK_LEASE", "2")
    proc = subprocess.Popen([sys.executable, CHILD, "community-stats", "cache", "generate",
                             "--force", "--no-show-progress", "--community-id", "global",
                             "--year", str(THIS)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not counter_client().get("cachetest:child_started"):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        assert holder(LOCK)["pid"] == proc.pid
        skipped = generate_cached_responses_task("all")
        assert skipped["skipped"] is True and skipped["success"] is False
        assert ResponseCache().entries() == []
    finally:
        proc.kill()  # SIGKILL: no clean-up of any kind
        proc.wait()
    assert registry_client().exists(f"global_cache_{THIS}")  # left behind by the child
    assert 0 < redis_client().pttl(f"lock:{LOCK}") <= 2000
    deadline = time.monotonic() + 5
    while holder(LOCK) is not None:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    summary = run_generation(["global"], [str(THIS)], compute=compute)
    assert summary["success"] == len(RECORD_CATEGORIES) and summary["failed"] == 0
    assert not list(registry_client().scan_iter(match="global_cache_*"))
    assert holder(LOCK) is None


# --- the CLI -------------------------------------------------------------------

def run(app, *args):
    return app.test_cli_runner().invoke(cli, ["cache", *args])


def one_error(result, text):
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 1, result.output
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert text in lines[0], lines[0]


@pytest.mark.parametrize("args, message", [
    ([], "Scheduled cache tasks are disabled"),
    (["--force", "--year", "20x3"], "Malformed year '20x3'"),
    (["--force", "--year", "2024-2020"], "Bad year range"),
    (["--force", "--community-slug", "no-such-community"], "Unknown community"),
])
def test_cli_generate_refuses_bad_input_and_writes_nothing(aggregated, services, monkeypatch,
                                                          args, message):
    monkeypatch.setattr(cache_generation, "default_compute", compute)
    one_error(run(services, "generate", "--no-show-progress", *args), message)
    assert ResponseCache().entries() == [] and computed() == 0


def test_cli_generate_list_info_and_clear(aggregated, services, monkeypatch):
    monkeypatch.setattr(cache_generation, "default_compute", compute)
    cache, alpha_slug = ResponseCache(), aggregated["alpha_slug"]
    dry = run(services, "generate", "--force", "--dry-run", "--community-slug", alpha_slug)
    assert dry.exit_code == 0 and f"{alpha_slug}: {PAST}-{THIS}, 4 entries (0 exist)" in \
        dry.output
    assert cache.entries() == [] and computed() == 0
    done = run(services, "generate", "--force", "--no-show-progress", "--community-slug",
               alpha_slug, "--year", str(PAST))
    assert done.exit_code == 0, done.output
    assert "Success: 2, Failed: 0, Skipped (already exist): 0" in done.output
    done = run(services, "generate", "--force", "--no-show-progress", "--community-id",
               "global", "--year", f"{PAST}-{THIS}")
    assert done.exit_code == 0 and "Success: 4" in done.output
    assert computed() == 6
    listing = run(services, "list")
    assert listing.exit_code == 0 and "showing 6 of 6" in listing.output
    assert f"{alpha_slug[:30]}" in listing.output and "record-delta-category" in listing.output
    info = run(services, "info")
    assert info.exit_code == 0 and "Entries: 6" in info.output
    assert f"{alpha_slug} {PAST}: 2 entries" in info.output
    dry = run(services, "clear-pattern", alpha_slug, "--dry-run")
    assert "Would clear 2 cache entries" in dry.output and len(cache.entries()) == 6
    gone = run(services, "clear-pattern", alpha_slug, "--force")
    assert "Successfully cleared 2 cache entries" in gone.output
    assert {e["community_id"] for e in cache.entries()} == {"global"}
    gone = run(services, "clear-pattern", str(PAST), "--force")
    assert "Successfully cleared 2" in gone.output
    assert {e["year"] for e in cache.entries()} == {THIS}
    item = run(services, "clear-item", "global", str(THIS), "record-delta-category")
    assert item.exit_code == 0 and "Cleared 1 cache entries" in item.output
    assert [e["category"] for e in cache.entries()] == ["record-snapshot-category"]
    one_error(run(services, "clear-item", "no-such-community", str(THIS)), "Unknown community")
    assert len(cache.entries()) == 1
    cleared = run(services, "clear-all", "--yes-i-know")
    assert cleared.exit_code == 0 and cache.entries() == []
    tested = run(services, "test")
    assert tested.exit_code == 0 and "Cache test passed" in tested.output
    assert not list(cache.client.scan_iter(match="stats_test:*"))


def test_generation_with_the_query_layer(aggregated):
    """The default compute (``compute_category``) fills entries, pruned or not."""
    from invenio_stats_dashboard.resources.queries import compute_category

    alpha = aggregated["alpha"]
    for optimize in (False, True):
        cache = ResponseCache()
        summary = create([alpha], [PAST], optimize=optimize, cache=cache)
        assert (summary["success"], summary["failed"]) == (2, 0), summary["errors"]
        key = cache.key(alpha, PAST, "record-delta-category", "added", optimize)
        components = cache_generation.layout_components(alpha) if optimize else None
        assert json.loads(cache.read(key)) == json.loads(json.dumps(compute_category(
            "record-delta-category", alpha, f"{PAST}-01-01", f"{PAST}-12-31",
            component_names=components)))
    assert len(ResponseCache().entries()) == 4


def test_generation_of_all_cleans_up_what_no_longer_belongs(aggregated):
    """Gap 11: disabled or deleted communities, years outside the history; other years stay."""
    cache, registry = ResponseCache(), registry_client()
    alpha, gone = aggregated["alpha"], "00000000-0000-4000-8000-000000000000"
    for community_id, year in ((alpha, PAST), ("global", 1990), (gone, PAST),
                               ("global", PAST)):
        assert cache.store(community_id, year, "record-delta-category", "added", {"x": 1},
                           True)
    registry.set(f"{gone}_first_run", "in_progress")
    # opt-in (default): no community has its dashboard enabled, so "all" is global only
    summary = create("all", [str(THIS)], compute=compute, cache=cache)
    assert (summary["success"], summary["cleaned"]) == (len(RECORD_CATEGORIES), 3)
    assert {(e["community_id"], e["year"]) for e in cache.entries()} == {
        ("global", PAST), ("global", THIS)}
    assert not registry.exists(f"{gone}_first_run")


def test_cli_generate_async_and_in_the_background(aggregated, services, child_env,
                                                 monkeypatch, tmp_path):
    """``--async`` queues the task (eager here); ``generate-background`` runs ``generate``
    in a detached ``invenio`` process — both with the real compute (``compute_category``)."""
    from invenio_stats_dashboard.utils.process_manager import ProcessManager

    alpha, alpha_slug, cache = aggregated["alpha"], aggregated["alpha_slug"], ResponseCache()
    queued = run(services, "generate", "--force", "--async", "--community-id", alpha,
                 "--year", str(PAST))
    assert queued.exit_code == 0 and "Task started with ID: " in queued.output, queued.output
    assert {(e["community_id"], e["year"]) for e in cache.entries()} == {(alpha, PAST)}
    cache.clear_all()
    one_error(run(services, "generate-background", "--community-slug", alpha_slug,
                  "--pid-dir", str(tmp_path)), "Scheduled cache tasks are disabled")
    monkeypatch.setenv("INVENIO_STATS_CACHE_CATEGORIES", repr(RECORD_CATEGORIES))
    started = run(services, "generate-background", "--force", "--community-slug", alpha_slug,
                  "--year", str(THIS), "--pid-dir", str(tmp_path))
    assert started.exit_code == 0 and "Started cache-generation in background" in \
        started.output, started.output
    job, deadline = ProcessManager("cache-generation", tmp_path), time.monotonic() + 180
    while (status := job.status() or {}).get("running", True):
        assert time.monotonic() < deadline, status
        time.sleep(0.5)
    assert status["status"] == "finished", "".join(job.read_log(100))
    assert f"--community-id {alpha}" in status["command"]
    assert sorted(e["category"] for e in cache.entries()
                  if (e["community_id"], e["year"]) == (alpha, THIS)) == sorted(
        RECORD_CATEGORIES)
