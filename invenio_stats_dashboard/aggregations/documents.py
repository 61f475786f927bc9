# Part of invenio-stats-dashboard (MIT License).
"""Where an aggregated document lives and the fields every document has.

One document per (community, day), id ``<community>-<YYYY-MM-DD>``, in the
yearly index ``<prefix><alias>-<YYYY>`` behind the alias: a re-run overwrites
it (X1). The day is the UTC calendar day ``[D, D+1)`` (T1); the stored
``period_end`` keeps upstream's ``23:59:59`` shape.
"""

from datetime import date, datetime, timedelta, timezone

from invenio_search.utils import prefix_index

DAY = timedelta(days=1)


def doc_id(community_id, day):
    """Deterministic id: re-running a day overwrites its document."""
    return f"{community_id}-{day.isoformat()}"


def index_name(series, day):
    """The yearly index of ``day`` (prefixed)."""
    return prefix_index(f"{series.alias}-{day.year}")


def alias_name(series):
    """The series' read alias (prefixed)."""
    return prefix_index(series.alias)


def window(day):
    """``(start, end)`` instants of the day, half-open (ISO, UTC)."""
    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    return start.isoformat(), (start + DAY).isoformat()


def days(first, last):
    """Every day from ``first`` to ``last`` inclusive."""
    out, day = [], first
    while day <= last:
        out.append(day)
        day += DAY
    return out


def as_day(value):
    """A ``date`` from a date, datetime or ISO string (UTC)."""
    if value is None or isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc)
    return value.date()


def stamp(series, community_id, day, body, now):
    """The stored document: the family's body plus the fields every document has."""
    out = {"community_id": community_id}
    if series.is_delta:
        out["period_start"] = f"{day.isoformat()}T00:00:00"
        out["period_end"] = f"{day.isoformat()}T23:59:59"
    else:
        out["snapshot_date"] = f"{day.isoformat()}T00:00:00"
    out.update(body)
    out["timestamp"] = out["updated_timestamp"] = now
    return out
