# Part of invenio-stats-dashboard (MIT License).
"""What the records series need to know about a record version, and the delta body.

Record metrics use the version's **current** metadata (R3), read from the
records index (deleted versions stay there with their metadata and files).
A :class:`RecordInfo` holds, per configured subcount key, the values the
version carries — one generic reader of ``COMMUNITY_STATS_SUBCOUNTS``:

* a source field is read from ``_source`` (a ``.keyword`` suffix is a
  mapping sub-field, dropped); lists are flattened on the way;
* values of all the key's sources are united, so a record counts once per
  value (S2; affiliations over creators ∪ contributors, S3); values without
  an id are not counted;
* ``combine_subfields`` (funders): the item id is the first sub-field present
  (the funder id, else its name), the label the label field (S4);
* labels are the label field's value (a localised title or a name), else the
  id string (S7);
* a value read from the file entries (``files.entries.ext``) gets the files
  carrying it, so an extension's item counts only its own files (S5); any
  other value gets all of the version's files.

:class:`DeltaTally` builds a delta body (aggregations.md §3.1) from the
records and parents a family says were added or removed.
"""

import hashlib
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field


from ..search_indices.names import records_index
from ..services.events_log import parse_publication_date
from . import documents as docs

CLASSES = ("metadata_only", "with_files")
SIDES = ("added", "removed")
FILE_ENTRIES = ("files", "entries")
#: Ids per terms query: well below OpenSearch's max_terms_count; pages of hits
#: are walked with search_after, so no answer is ever truncated.
TERMS_CHUNK = 1000
PAGE = 1000
BASE_SOURCE = ["id", "parent.id", "parent.access.owned_by", "files.enabled",
               "files.entries.key", "files.entries.size", "files.entries.ext",
               "created", "metadata.publication_date"]


def _path(name):
    name = name[:-len(".keyword")] if name.endswith(".keyword") else name
    return tuple(name.split("."))


@dataclass(frozen=True)
class Reader:
    """Where one source field's values (and their labels) are in a record's ``_source``."""

    prefix: tuple  # path to the objects carrying a value
    ids: tuple  # relative paths tried in order for the value (combine_subfields)
    label: tuple | None  # relative path of the label

    @classmethod
    def of(cls, source):
        """The reader of a configured source field.

        The value is ``field`` only, as the usage family counts it:
        ``combine_subfields`` (upstream's funders: id, else name) is not a
        fallback — a funder without an id is not counted (S4: item id = funder
        id; as S3 for affiliations), records and usage alike.
        """
        paths = [_path(source.field)]
        label = _path(source.label_field) if source.label_field else None
        every = paths + ([label] if label else [])
        prefix = []
        for parts in zip(*every):
            if len(set(parts)) > 1:
                break
            prefix.append(parts[0])
        prefix = tuple(prefix[:min(len(p) for p in every) - 1])
        n = len(prefix)
        return cls(prefix, tuple(p[n:] for p in paths), label[n:] if label else None)

    @property
    def source_paths(self):
        """``_source`` includes needed to read this field."""
        return [".".join(self.prefix + rel) for rel in (*self.ids, *([self.label] if self.label else []))]

    def read(self, source):
        """``[(value, label or None, object)]`` found in a record's ``_source``."""
        out = []
        for obj in _walk(source, self.prefix):
            value = None
            for rel in self.ids:
                found = [v for v in _walk(obj, rel) if _is_value(v)]
                if found:
                    value = found[0]
                    break
            if value is None:
                continue
            labels = [v for v in _walk(obj, self.label)] if self.label else []
            label = next((v for v in labels if v not in (None, "", {})), None)
            out.append((str(value), label, obj))
        return out


def _is_value(value):
    return isinstance(value, (str, int, float)) and not isinstance(value, bool) and value != ""


def _walk(value, path):
    """Every value at ``path`` below ``value``, lists flattened."""
    if isinstance(value, list):
        return [v for item in value for v in _walk(item, path)]
    if not path:
        return [value]
    if not isinstance(value, Mapping):
        return []
    return _walk(value.get(path[0]), path[1:]) if path[0] in value else []


@dataclass(frozen=True)
class KeyReader:
    """Every source of one subcount key."""

    key: str
    readers: tuple

    @classmethod
    def of(cls, block):
        """From a :class:`subcounts.Block`."""
        return cls(block.key, tuple(Reader.of(s) for s in block.sources))


def key_readers(blocks):
    """Readers of the records blocks, in config order."""
    return [KeyReader.of(b) for b in blocks]


@dataclass
class RecordInfo:
    """A record version as the records series count it (current metadata, R3)."""

    id: str
    parent: str
    owner: str | None
    files_class: str | None  # "metadata_only" | "with_files" | None (neither split)
    file_count: int
    volume: float
    created: object  # date
    published: object  # date or None (unparseable publication date)
    #: key -> {value: (file_count, volume)} (files of the value's item, S5)
    items: dict = field(default_factory=dict)
    #: (key, value) -> label (when the record gives one)
    labels: dict = field(default_factory=dict)

    def digest(self):
        """A stable fingerprint of everything counted about this version."""
        text = repr((self.id, self.parent, self.owner, self.files_class, self.file_count,
                     self.volume, str(self.created), str(self.published),
                     sorted((k, sorted(v.items())) for k, v in self.items.items()),
                     sorted((k, repr(v)) for k, v in self.labels.items())))
        return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def record_info(source, readers):
    """A :class:`RecordInfo` from a records-index ``_source``."""
    files = source.get("files") or {}
    entries = files.get("entries") or []
    if isinstance(entries, Mapping):
        entries = list(entries.values())
    sizes = [float(e.get("size") or 0) for e in entries if isinstance(e, Mapping)]
    enabled = files.get("enabled")
    owner = ((source.get("parent") or {}).get("access") or {}).get("owned_by") or {}
    owner = owner.get("user") if isinstance(owner, Mapping) else None
    info = RecordInfo(
        id=source["id"], parent=(source.get("parent") or {}).get("id") or source["id"],
        owner=str(owner) if owner not in (None, "") else None,
        files_class="with_files" if enabled is True else "metadata_only" if enabled is False else None,
        file_count=len(sizes), volume=sum(sizes),
        created=docs.as_day(source["created"]) if source.get("created") else None,
        published=_day(parse_publication_date((source.get("metadata") or {}).get("publication_date"))),
    )
    for kr in readers:
        values = {}
        for reader in kr.readers:
            is_file = reader.prefix == FILE_ENTRIES
            for value, label, obj in reader.read(source):
                if is_file:
                    count, volume = values.get(value, (0, 0.0))
                    values[value] = (count + 1, volume + float(obj.get("size") or 0))
                else:
                    values.setdefault(value, (info.file_count, info.volume))
                if label is not None:
                    info.labels.setdefault((kr.key, value), label)
        if values:
            info.items[kr.key] = values
    return info


def _day(iso):
    return docs.as_day(iso) if iso else None


def source_includes(readers):
    """``_source`` includes for :func:`record_info`."""
    paths = list(BASE_SOURCE)
    for kr in readers:
        for reader in kr.readers:
            paths.extend(reader.source_paths)
    return sorted(set(paths))


def search_all(ctx, query, source, sort=("id",)):
    """Every hit of ``query`` on the records index, ``search_after`` pages (exact)."""
    body = {"query": query, "size": PAGE, "_source": source,
            "sort": [{name: "asc"} for name in sort], "track_total_hits": False}
    while True:
        hits = ctx.client.search(index=records_index(), body=body)["hits"]["hits"]
        yield from hits
        if len(hits) < PAGE:
            return
        body["search_after"] = hits[-1]["sort"]


def fetch(ctx, record_ids, readers, field_name="id"):
    """``{id: RecordInfo}`` of the versions whose ``field_name`` is in ``record_ids``."""
    ids = sorted(set(record_ids))
    out = {}
    source = source_includes(readers)
    for start in range(0, len(ids), TERMS_CHUNK):
        query = {"terms": {field_name: ids[start:start + TERMS_CHUNK]}}
        for hit in search_all(ctx, query, source):
            info = record_info(hit["_source"], readers)
            out[info.id] = info
    return out


def fetch_versions(ctx, parent_ids, readers):
    """``{id: RecordInfo}`` of every version (deleted ones too) of ``parent_ids``."""
    return fetch(ctx, parent_ids, readers, field_name="parent.id")


# --- delta bodies --------------------------------------------------------------

def _side():
    return {"records": [0, 0], "parents": [0, 0], "files": [0, 0.0]}


def _split(pair):
    return {"metadata_only": pair[0], "with_files": pair[1]}


def _files(pair):
    return {"file_count": pair[0], "data_volume": float(pair[1])}


def _block(sides):
    return {"records": {s: _split(sides[s]["records"]) for s in SIDES},
            "parents": {s: _split(sides[s]["parents"]) for s in SIDES},
            "files": {s: _files(sides[s]["files"]) for s in SIDES}}


class DeltaTally:
    """Counts of one day's added and removed sets, top level and per subcount item."""

    def __init__(self, readers):
        """Empty counts for the configured keys."""
        self.keys = [kr.key for kr in readers]
        self.top = {s: _side() for s in SIDES}
        self.items = {key: {} for key in self.keys}
        self.labels = {}
        self.uploaders = set()

    def _item(self, key, value):
        item = self.items[key].get(value)
        if item is None:
            item = self.items[key][value] = {s: _side() for s in SIDES}
        return item

    def record(self, side, info):
        """``info`` is in the day's ``side`` set (``added``/``removed``)."""
        top = self.top[side]
        if info.files_class:
            top["records"][CLASSES.index(info.files_class)] += 1
        top["files"][0] += info.file_count
        top["files"][1] += info.volume
        if side == "added" and info.owner is not None:
            self.uploaders.add(info.owner)
        for key, values in info.items.items():
            for value, (count, volume) in values.items():
                item = self._item(key, value)[side]
                if info.files_class:
                    item["records"][CLASSES.index(info.files_class)] += 1
                item["files"][0] += count
                item["files"][1] += volume
                label = info.labels.get((key, value))
                if label is not None:
                    self.labels.setdefault((key, value), label)

    def parent(self, side, classes, item=None):
        """A parent counts in ``side`` under each of ``classes`` (top level or ``(key, value)``)."""
        target = self.top[side] if item is None else self._item(*item)[side]
        for cls in classes:
            target["parents"][CLASSES.index(cls)] += 1

    def body(self):
        """The delta body (without the fields the engine adds)."""
        out = _block(self.top)
        out["uploaders"] = len(self.uploaders)
        out["subcounts"] = {
            key: [{"id": value, "label": self.labels.get((key, value), value), **_block(sides)}
                  for value, sides in sorted(self.items[key].items())]
            for key in self.keys}
        return out


def zero_delta(readers):
    """A delta body with every number 0 and every key ``[]``."""
    return DeltaTally(readers).body()


def classes_of(infos):
    """The files classes present among ``infos`` (R4a: possibly both)."""
    return {i.files_class for i in infos if i.files_class}


def by_item(infos):
    """``{(key, value): [infos carrying it]}``: the restriction of S2 per item."""
    out = defaultdict(list)
    for info in infos:
        for key, values in info.items.items():
            for value in values:
                out[(key, value)].append(info)
    return out
