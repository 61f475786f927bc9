# Part of invenio-stats-dashboard (MIT License).
"""Usage-event migration as Celery tasks (``usage-events migrate --async``)."""

from celery import shared_task

from ..exceptions import TaskLockAcquisitionError
from ..proxies import current_event_reindexing_service


@shared_task(bind=True, ignore_result=False)
def reindex_usage_events_with_metadata(self, event_types=None, max_batches=None,
                                       batch_size=None, max_memory_percent=None,
                                       delete_old_indices=False, fresh_start=False,
                                       months=None):
    """Run the migration; returns its report (a JSON-able dict).

    The options apply to this run only; while another migration or
    re-enrichment holds the lock the report says ``skipped``.
    """
    service = current_event_reindexing_service._get_current_object()
    done = {}

    def progress(event_type, month, processed):  # the task's state says how far it is
        done[f"{event_type} {month}"] = processed
        if self.request.id and not self.request.is_eager:
            self.update_state(state="PROGRESS", meta={"processed": sum(done.values()),
                                                      "months": dict(done)})

    try:
        return service.reindex_events(event_types=event_types, max_batches=max_batches,
                                      delete_old_indices=delete_old_indices,
                                      fresh_start=fresh_start, month_filter=months or None,
                                      batch_size=batch_size, progress=progress,
                                      max_memory_percent=max_memory_percent)
    except TaskLockAcquisitionError as exc:
        return {"completed": False, "skipped": True, "error": str(exc),
                "total_processed": 0, "total_errors": 0, "event_types": {},
                "health_issues": []}


@shared_task(ignore_result=False)
def get_reindexing_progress():
    """Per type and month: source, migrated and remaining counts, and health."""
    service = current_event_reindexing_service._get_current_object()
    return {"counts": service.count_total_events(), "health": service.check_health_conditions()}
