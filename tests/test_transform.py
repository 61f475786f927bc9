# Part of invenio-stats-dashboard (MIT License).
"""The series fold pauses the cyclic garbage collector and always gives it back.

Pure Python (no service): the pause is process-wide, so a fold that left it
off — after an error, or when two folds overlap in threads — would leave the
API process collecting no cycles at all.
"""

import gc
import threading

import pytest

from invenio_stats_dashboard.resources.categories import CATEGORIES
from invenio_stats_dashboard.resources.transform import build_series_set, collector_paused


def docs(n, year=2025):
    return [{"period_start": f"{year}-01-{d + 1:02d}T00:00:00",
             "totals": {"view": {"total_events": d + 1}}} for d in range(n)]


def test_the_fold_restores_the_collector_and_counts_every_point():
    assert gc.isenabled()
    series = build_series_set(CATEGORIES["usage-delta-category"], docs(20), {})
    views = series["global"]["views"][0]
    assert views["year"] == 2025 and [v for _, v in views["data"]] == list(range(1, 21))
    assert gc.isenabled()


def test_an_error_inside_a_fold_restores_the_collector():
    with pytest.raises(ZeroDivisionError):
        with collector_paused():
            assert not gc.isenabled()
            1 / 0  # noqa: B018
    assert gc.isenabled()


def test_overlapping_folds_restore_the_collector_when_the_last_ends():
    inside, release = threading.Event(), threading.Event()

    def slow_fold():
        with collector_paused():
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=slow_fold)
    thread.start()
    inside.wait(10)
    with collector_paused():
        pass
    assert not gc.isenabled()  # the other fold still runs
    release.set()
    thread.join()
    assert gc.isenabled()


def test_a_disabled_collector_stays_disabled():
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
