# Part of invenio-stats-dashboard (MIT License).
"""JSON and compressed-JSON bodies.

Plain JSON is the dashboard's own format and stays exactly the cached shape
(§3.3, year blocks with ``MM-DD`` dates and ``year``): it is lossless and the
client expands dates itself.

The compressed variants are *files* the client asked for by media type
(``application/json+gzip`` / ``+br``), so — as for the archives (gap 7) — they
go out with their own media type and WITHOUT ``Content-Encoding``: with that
header every HTTP client silently decompresses, and the user would save plain
JSON under a ``.json.gz`` name. Upstream never reached them at all (gap 6).
"""

import gzip

import brotli
import orjson

JSON = "application/json"
JSON_GZIP = "application/json+gzip"
JSON_BR = "application/json+br"


def attachment(filename):
    """A ``Content-Disposition`` value offering ``filename`` for download."""
    return f'attachment; filename="{filename}"'


def encode(results):
    """orjson bytes of the response; non-str keys (never expected) are stringified."""
    return orjson.dumps(results, option=orjson.OPT_NON_STR_KEYS)


def json_serializer(results, **_options):
    """``application/json``: the response object as it is."""
    return encode(results), {"Content-Type": JSON}


def gzip_json_serializer(results, **_options):
    """``application/json+gzip``: gzip of the JSON body, as a ``stats.json.gz`` file.

    ``mtime=0`` keeps the bytes reproducible for identical data.
    """
    body = gzip.compress(encode(results), compresslevel=6, mtime=0)
    return body, {"Content-Type": JSON_GZIP, "Content-Disposition": attachment("stats.json.gz")}


def brotli_json_serializer(results, **_options):
    """``application/json+br``: brotli of the JSON body, as a ``stats.json.br`` file.

    Quality 5 rather than brotli's default 11: the latter is many times slower
    for a few percent on a multi-megabyte response built per request.
    """
    body = brotli.compress(encode(results), quality=5)
    return body, {"Content-Type": JSON_BR, "Content-Disposition": attachment("stats.json.br")}
