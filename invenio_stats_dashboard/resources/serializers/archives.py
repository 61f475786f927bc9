# Part of invenio-stats-dashboard (MIT License).
"""CSV and XLSX exports: a gzip-compressed tar of files (§7.2, §7.3).

Decision (gap 7): the archive is a ``.tar.gz`` — upstream's attachment names
(``data_series_csv.tar.gz``, ``data_series_excel.tar.gz``) are kept so existing
scripts keep working — sent as ``Content-Type: application/gzip`` with NO
``Content-Encoding``. Upstream also declared ``Content-Encoding: gzip``, so
browsers and ``curl --compressed`` removed the gzip layer and saved a plain tar
under a ``.tar.gz`` name. Without the header the bytes saved are the bytes sent.

Both formats take their rows from ``rows.py`` (full ``YYYY-MM-DD`` dates,
gap 8); this module only decides which file a row lands in.
"""

import csv
import io
import tarfile
import time
from datetime import date
from itertools import groupby

from werkzeug.utils import secure_filename

from .json import attachment
from .rows import group_blocks, iter_metrics, iter_rows, number

CSV = "text/csv"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ARCHIVE = "application/gzip"
COLUMNS = ("id", "label", "date", "value", "units")

#: Characters Excel forbids in sheet names (it also caps them at 31 characters).
_SHEET_FORBIDDEN = str.maketrans({c: "_" for c in "\\/?*[]:"})


def safe_part(name):
    """A path component for ``name`` (werkzeug ``secure_filename``, never empty)."""
    return secure_filename(str(name)) or "_"


def archive_name(kind, extension, community=None):
    """Upstream's attachment name, ``_<community>`` appended when one is given."""
    suffix = f"_{secure_filename(str(community))}" if community else ""
    return f"data_series_{kind}{suffix}.{extension}"


class TarBuilder:
    """Collects members in memory and returns the ``.tar.gz`` bytes.

    One timestamp for every member: a response is one snapshot.
    """

    def __init__(self):
        """Open an in-memory gzip-compressed tar."""
        self.buffer = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buffer, mode="w:gz")
        self.mtime = int(time.time())

    def add(self, path, data):
        """Add a regular file ``path`` holding ``data`` (bytes)."""
        info = tarfile.TarInfo(path)
        info.size, info.mtime, info.mode = len(data), self.mtime, 0o644
        self.tar.addfile(info, io.BytesIO(data))

    def close(self):
        """Finish the archive and return its bytes."""
        self.tar.close()
        return self.buffer.getvalue()


def _headers(kind, community):
    return {
        "Content-Type": ARCHIVE,
        "Content-Disposition": attachment(archive_name(kind, "tar.gz", community)),
    }


def csv_serializer(results, community=None, **_options):
    """``text/csv``: ``<query>/<subcountKey>/<metricKey>.csv`` per metric with points.

    Metrics without points produce no file (an empty CSV says nothing a
    missing one does not).
    """
    archive = TarBuilder()
    rows = iter_rows(iter_metrics(results))
    for (query, subcount, metric), group in _group_rows(rows):
        text = io.StringIO(newline="")
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in group:
            writer.writerow((row.series_id, row.label, row.date, number(row.value), row.block.unit))
        path = f"{safe_part(query)}/{safe_part(subcount)}/{safe_part(metric)}.csv"
        archive.add(path, text.getvalue().encode("utf-8"))
    return archive.close(), _headers("csv", community)


def _group_rows(rows):
    """Group consecutive rows by their metric block's (query, subcount, metric)."""
    return groupby(rows, key=lambda r: (r.block.query, r.block.subcount, r.block.metric))


def sheet_title(metric):
    """Excel-safe sheet name: forbidden characters → ``_``, at most 31 characters."""
    return str(metric).translate(_SHEET_FORBIDDEN)[:31] or "_"


def xlsx_serializer(results, community=None, **_options):
    """XLSX: ``<query>/<subcountKey>.xlsx``, one sheet per metric with points.

    Dates are real Excel dates (``yyyy-mm-dd``) so spreadsheets sort and chart
    them; a workbook whose subcount has no points gets a ``No Data`` sheet.
    """
    archive = TarBuilder()
    for (query, subcount), blocks in group_blocks(iter_metrics(results), "query", "subcount"):
        data = _workbook(blocks)
        archive.add(f"{safe_part(query)}/{safe_part(subcount)}.xlsx", data)
    return archive.close(), _headers("excel", community)


def _workbook(blocks):
    """Bytes of one workbook holding the sheets of ``blocks`` (one subcount)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill

    book = Workbook()
    book.remove(book.active)
    bold, grey = Font(bold=True), PatternFill("solid", fgColor="DDDDDD")
    for (metric,), group in group_blocks(blocks, "metric"):
        rows = list(iter_rows(group))
        if not rows:
            continue
        sheet = book.create_sheet(sheet_title(metric))
        sheet.append(COLUMNS)
        for cell in sheet[1]:
            cell.font, cell.fill = bold, grey
        for row in rows:
            day = date.fromisoformat(row.date)
            sheet.append((row.series_id, row.label, day, number(row.value), row.block.unit))
            sheet.cell(sheet.max_row, 3).number_format = "yyyy-mm-dd"
    if not book.worksheets:
        message = "No data points for this subcount in the requested range."
        book.create_sheet("No Data").append((message,))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
