# Part of invenio-stats-dashboard (MIT License).
"""Content negotiation and export formats of ``/api/stats-dashboard`` (§7).

``negotiate(accept)`` picks the media type from a real ``Accept`` parse
(q-values, wildcards). Upstream tested ``"application/json" in accept`` as a
substring, so ``application/json+gzip``/``+br`` were unreachable and the raw
header came back as Content-Type (gap 6).

``serialize(results, mimetype)`` turns ``{query: series_set}`` into
``(body bytes, headers)`` with the serializer configured for the type in
``COMMUNITY_STATS_SERIALIZERS`` (mimetype → import string or callable), so an
instance can add or replace formats; the view turns the pair into a response.
"""

from werkzeug.datastructures import MIMEAccept
from werkzeug.http import parse_accept_header
from werkzeug.utils import import_string

from ...config.config import COMMUNITY_STATS_SERIALIZERS
from .archives import CSV, XLSX
from .json import JSON, JSON_BR, JSON_GZIP
from .xml import XML

#: Default of ``COMMUNITY_STATS_SERIALIZERS`` (config/config.py), used outside an app.
DEFAULT_SERIALIZERS = COMMUNITY_STATS_SERIALIZERS

__all__ = (
    "CSV", "DEFAULT_SERIALIZERS", "JSON", "JSON_BR", "JSON_GZIP", "XLSX", "XML", "negotiate", "serialize",
)


def configured_serializers():
    """``COMMUNITY_STATS_SERIALIZERS`` of the current app, or the defaults outside one."""
    try:
        from flask import current_app

        configured = current_app.config.get("COMMUNITY_STATS_SERIALIZERS")
    except RuntimeError:
        configured = None
    return configured or DEFAULT_SERIALIZERS


def _ordered(available):
    """Offered types, ``application/json`` first so wildcards default to JSON."""
    types = list(available)
    return sorted(types, key=lambda t: t != JSON)


def negotiate(accept_header, available=None):
    """Return the media type to answer with, or ``None`` (→ 406).

    Absent/empty header, ``*/*`` → ``application/json``. Otherwise the offered
    type with the highest client q-value (``q=0`` excludes); ties go to the
    order of ``COMMUNITY_STATS_SERIALIZERS`` with JSON first.
    """
    offered = _ordered(configured_serializers() if available is None else available)
    if accept_header is None or not str(accept_header).strip():
        return JSON if JSON in offered else (offered[0] if offered else None)
    parsed = parse_accept_header(str(accept_header), MIMEAccept)
    # Media-type parameters (``text/csv;charset=utf-8``) would make werkzeug
    # require the same parameters on the offered type; we offer one variant
    # of each type, so only type/subtype and q count.
    accept = MIMEAccept([(value.split(";", 1)[0].strip(), quality) for value, quality in parsed])
    return accept.best_match(offered, default=None)


def get_serializer(mimetype):
    """The callable configured for ``mimetype`` (import strings are resolved)."""
    serializers = configured_serializers()
    if mimetype not in serializers:
        raise KeyError(f"no serializer configured for {mimetype!r}")
    serializer = serializers[mimetype]
    return import_string(serializer) if isinstance(serializer, str) else serializer


def serialize(results, mimetype, **options):
    """``(body, headers)`` for ``{query: series_set}`` in ``mimetype``.

    ``options`` (all optional) go to the serializer: ``community`` (slug or
    id, appended to attachment names and stated in the XML) and
    ``start_date``/``end_date`` (the XML ``timeRange``). Headers always carry
    ``Content-Type``; attachments also ``Content-Disposition``; none carries
    ``Content-Encoding`` (gap 7).
    """
    return get_serializer(mimetype)(results, **options)
