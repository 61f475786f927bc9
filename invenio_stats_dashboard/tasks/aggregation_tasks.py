# Part of invenio-stats-dashboard (MIT License).
"""The hourly aggregation task (beat entry ``stats-aggregate-community-record-stats``).

One run lock for the whole run (``community_stats_aggregation``, renewed
lease: a killed worker blocks the next run for one lease at most, fix G21)
and a unit lock per (delta series, community) inside it; a run that finds
the run lock held returns a "skipped" report instead of waiting (upstream's
behaviour).

Scale-out: with ``workers`` > 1 (``COMMUNITY_STATS_AGGREGATION_WORKERS``)
the task queues that many ``aggregate_run_worker`` tasks minus itself; every
one takes communities from the run's list in Redis until it is empty, and
the starting task waits for them and reports.
"""

from celery import shared_task
from flask import current_app

from ..exceptions import TaskLockAcquisitionError
from ..utils.jobs import configured_job


def dispatch_workers(run_id, count):
    """Queue ``count`` helper workers on a run (none when Celery runs eagerly)."""
    if current_app.config.get("CELERY_TASK_ALWAYS_EAGER"):
        return []
    return [aggregate_run_worker.delay(run_id) for _ in range(count)]


def run_aggregation(aggregations=None, start_date=None, end_date=None, update_bookmark=True,
                    ignore_bookmark=False, community_ids=None, verbose=False, workers=None,
                    until_caught_up=False, progress=None):
    """The task's body (also called in-process by the CLI and the service)."""
    from ..aggregations.report import format_report
    from ..aggregations.runner import aggregate

    if workers is None:
        workers = int(current_app.config.get("COMMUNITY_STATS_AGGREGATION_WORKERS", 1) or 1)
    try:
        with configured_job("aggregation") as job:
            result = aggregate(aggregations, community_ids, start_date, end_date,
                               update_bookmark, ignore_bookmark, progress, job.stop_reason,
                               workers=workers, until_caught_up=until_caught_up,
                               dispatch=dispatch_workers)
    except TaskLockAcquisitionError as exc:
        return {"results": [], "total_duration": 0, "skipped": True, "error": str(exc),
                "stopped": None, "caught_up": False,
                "formatted_report": f"Aggregation skipped - another instance running ({exc})",
                "formatted_report_verbose": ""}
    result["formatted_report"] = format_report(result, verbose=False)
    result["formatted_report_verbose"] = format_report(result, verbose=True)
    return result


@shared_task(ignore_result=False)
def aggregate_community_record_stats(aggregations=None, start_date=None, end_date=None,
                                     update_bookmark=True, ignore_bookmark=False,
                                     community_ids=None, verbose=False, eager=False,
                                     workers=None, until_caught_up=False):
    """Aggregate (python-api.md §10); returns ``{results, total_duration, ...}``.

    ``eager`` is accepted for upstream's signature (the task always runs
    where it was delivered). Ours: ``workers`` (scale-out, see the module)
    and ``until_caught_up`` (every unit to today, not one catch-up step).
    """
    return run_aggregation(aggregations, start_date, end_date, update_bookmark,
                           ignore_bookmark, community_ids, verbose, workers, until_caught_up)


@shared_task(ignore_result=True)
def aggregate_run_worker(run_id):
    """Help run ``run_id``: take its communities until none is left."""
    from ..aggregations.runner import work

    return work(run_id)
