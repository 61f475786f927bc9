# Part of invenio-stats-dashboard (MIT License).
"""Event types, index-name suffix and month filters shared by migration and status."""

from ...search_indices.names import ENRICHED_SUFFIX as SUFFIX, EVENT_TYPES  # noqa: F401


def month_of(index_name):
    """``YYYY-MM`` at the end of an index name, or None."""
    parts = index_name.split("-")
    if len(parts) < 2 or not (parts[-2].isdigit() and parts[-1].isdigit()):
        return None
    return f"{parts[-2]}-{parts[-1]}"


def matches_months(month, month_filter):
    """Whether ``month`` is selected by ``YYYY-MM`` / ``YYYY-MM:YYYY-MM`` filters."""
    if not month_filter:
        return True
    filters = [month_filter] if isinstance(month_filter, str) else list(month_filter)
    for item in filters:
        if ":" in item:
            start, end = item.split(":", 1)
            if start <= month <= end:
                return True
        elif item == month:
            return True
    return False
