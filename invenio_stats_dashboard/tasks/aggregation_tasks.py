# Part of invenio-stats-dashboard (MIT License).
"""The hourly aggregation task (beat entry ``stats-aggregate-community-record-stats``).

One run lock for the whole run (``community_stats_aggregation``, renewed
lease: a killed worker blocks the next run for a minute at most, fix G21)
and a unit lock per (series, community) inside it; a run that finds the run
lock held returns a "skipped" report instead of waiting (upstream's
behaviour).
"""

from celery import shared_task

from ..exceptions import TaskLockAcquisitionError
from ..utils.jobs import configured_job


@shared_task(ignore_result=False)
def aggregate_community_record_stats(aggregations=None, start_date=None, end_date=None,
                                     update_bookmark=True, ignore_bookmark=False,
                                     community_ids=None, verbose=False, eager=False,
                                     progress=None):
    """Aggregate (python-api.md §10); returns ``{results, total_duration, ...}``."""
    from ..aggregations.report import format_report
    from ..aggregations.runner import aggregate

    try:
        with configured_job("aggregation") as job:
            result = aggregate(aggregations, community_ids, start_date, end_date,
                               update_bookmark, ignore_bookmark, progress, job.stop_reason)
    except TaskLockAcquisitionError as exc:
        return {"results": [], "total_duration": 0, "skipped": True, "error": str(exc),
                "formatted_report": f"Aggregation skipped - another instance running ({exc})",
                "formatted_report_verbose": ""}
    result["formatted_report"] = format_report(result, verbose=False)
    result["formatted_report_verbose"] = format_report(result, verbose=True)
    return result
