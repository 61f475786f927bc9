# Part of invenio-stats-dashboard (MIT License).
"""The response-cache generation task (beat entry ``stats-cache-hourly-generation``).

One run at a time: the task holds ``community_stats_cache_generation``
through the job protocol (:mod:`..utils.jobs`): a renewed lease, so a killed
worker's lock stops blocking after one lease instead of upstream's hour. A
run that finds the lock held returns a "skipped" result; any other failure
becomes ``{success: False, error}`` (upstream's contract, §8.4).
"""

from celery import shared_task

from ..exceptions import TaskLockAcquisitionError
from ..utils.jobs import configured_job


def run_generation(community_ids=None, years=None, overwrite=False, current_year_only=False,
                   optimize=None, progress=None, compute=None):
    """The task's body (also called in-process by ``cache generate``)."""
    from ..services.cache_generation import create

    try:
        with configured_job("response_caching") as job:
            forget_stale_flags()
            def report(done, total, label):
                job.check()  # a cancel request or a lost lock stops between items
                if progress is not None:
                    progress(done, total, label)

            summary = create(community_ids, years, overwrite, optimize, current_year_only,
                             compute=compute, progress=report)
    except TaskLockAcquisitionError as exc:
        return {"success": False, "skipped": True, "reason": str(exc)}
    except Exception as exc:  # noqa: BLE001 - the task reports, never raises
        return {"success": False, "error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
    summary["success_count"] = summary["success"]
    summary["completed"] = summary["failed"] == 0
    return summary


def forget_stale_flags():
    """Drop ``<id>_cache_<Y>`` flags a killed generation left (only a lock holder sets them)."""
    from ..aggregations.runner import registry_client

    registry = registry_client()
    for key in registry.scan_iter(match="*_cache_[0-9]*", count=500):
        registry.delete(key)


@shared_task(ignore_result=False)
def generate_cached_responses_task(community_ids=None, years=None, overwrite=False,
                                   current_year_only=False, optimize=None):
    """Generate cached responses (python-api.md §10); returns the §8.4 summary.

    ``community_ids``: None (global), ``"all"`` or a list of ids/slugs;
    ``years``: None/``"auto"`` (each community's history) or years/ranges.
    """
    return run_generation(community_ids, years, overwrite, current_year_only, optimize)
