# Part of invenio-stats-dashboard (MIT License).
"""The minimal vocabularies our records reference (tests and demo).

Loading InvenioRDM's full fixtures takes many minutes; these few entries cover
every subcount (resource types, languages, rights, subjects, affiliations,
funders) plus what deletion and communities need. Idempotent.
"""

from invenio_access.permissions import system_identity
from invenio_records_resources.proxies import current_service_registry
from invenio_vocabularies.proxies import current_service as vocabulary_service

RESOURCE_TYPES = {  # parents ("publication", "image") label the facets' top level
    "publication": ("Publication", "Text"),
    "image": ("Image", "Image"),
    "dataset": ("Dataset", "Dataset"),
    "publication-article": ("Journal article", "Text"),
    "software": ("Software", "Software"),
    "image-photo": ("Photo", "Image"),
}
LANGUAGES = {"eng": ("English", "en"), "fra": ("French", "fr"), "deu": ("German", "de")}
LICENSES = {
    "cc-by-4.0": "Creative Commons Attribution 4.0 International",
    "cc0-1.0": "Creative Commons Zero v1.0 Universal",
    "mit": "MIT License",
}
SUBJECTS = {
    "http://id.nlm.nih.gov/mesh/D000001": "Calcimycin",
    "http://id.nlm.nih.gov/mesh/D000002": "Temefos",
    "http://id.nlm.nih.gov/mesh/D000003": "Abattoirs",
}
AFFILIATIONS = {
    "01ggx4157": "CERN",
    "05gq02987": "Brown University",
    "013meh722": "University of Cambridge",
}
FUNDERS = {
    "00k4n6c32": ("European Commission", "BE"),
    "01cwqze88": ("National Institutes of Health", "US"),
}
COMMUNITY_TYPES = {"organization": "Organization", "project": "Project"}
REMOVAL_REASONS = {"spam": "Spam", "misconduct": "Misconduct"}
CONTRIBUTOR_ROLES = {"other": "Other", "researcher": "Researcher"}

_TYPES = {
    "resourcetypes": "rsrct",
    "languages": "lng",
    "licenses": "lic",
    "communitytypes": "comtyp",
    "removalreasons": "rem",
    "contributorsroles": "cor",
    "creatorsroles": "crr",
}


def _generic_entries():
    for id_, (title, datacite) in RESOURCE_TYPES.items():
        yield "resourcetypes", {
            "id": id_,
            "title": {"en": title},
            "icon": "file",
            "tags": ["depositable", "linkable"],
            "props": {
                "csl": "article",
                "datacite_general": datacite,
                "datacite_type": "",
                "openaire_resourceType": "0",
                "openaire_type": "other",
                "eurepo": "info:eu-repo/semantics/other",
                "schema.org": "https://schema.org/CreativeWork",
                "subtype": id_,
                "type": id_.split("-")[0],
                "marc21_type": "",
                "marc21_subtype": "",
            },
        }
    for id_, (title, alpha2) in LANGUAGES.items():
        yield "languages", {
            "id": id_,
            "title": {"en": title},
            "props": {"alpha_2": alpha2},
            "tags": ["individual", "living"],
        }
    for id_, title in LICENSES.items():
        yield "licenses", {
            "id": id_,
            "title": {"en": title},
            "description": {"en": title},
            "icon": "",
            "tags": ["recommended", "all"],
            "props": {"url": f"https://spdx.org/licenses/{id_}", "scheme": "spdx",
                      "osi_approved": ""},
        }
    for vtype, entries in (
        ("communitytypes", COMMUNITY_TYPES),
        ("removalreasons", REMOVAL_REASONS),
    ):
        for id_, title in entries.items():
            yield vtype, {"id": id_, "title": {"en": title}}
    for vtype in ("contributorsroles", "creatorsroles"):
        for id_, title in CONTRIBUTOR_ROLES.items():
            yield vtype, {"id": id_, "title": {"en": title}, "props": {"datacite": title}}


def _exists(service, identity, id_, vtype=None):
    try:
        if vtype:
            service.read(identity, (vtype, id_))
        else:
            service.read(identity, id_)
        return True
    except Exception:
        return False


def load_vocabularies():
    """Create the minimal vocabulary set (skipping entries that exist)."""
    from invenio_vocabularies.records.models import VocabularyType

    for vtype, pid_type in _TYPES.items():
        if not VocabularyType.query.filter_by(id=vtype).one_or_none():
            vocabulary_service.create_type(system_identity, vtype, pid_type)
    for vtype, entry in _generic_entries():
        if not _exists(vocabulary_service, system_identity, entry["id"], vtype):
            vocabulary_service.create(system_identity, {**entry, "type": vtype})

    registry = current_service_registry
    contrib = (
        ("subjects", {k: {"id": k, "scheme": "MeSH", "subject": v}
                      for k, v in SUBJECTS.items()}),
        ("affiliations", {k: {"id": k, "name": v, "acronym": v[:4].upper(),
                              "identifiers": [{"scheme": "ror", "identifier": k}]}
                          for k, v in AFFILIATIONS.items()}),
        ("funders", {k: {"id": k, "name": n, "country": c,
                         "identifiers": [{"scheme": "ror", "identifier": k}]}
                     for k, (n, c) in FUNDERS.items()}),
    )
    for name, entries in contrib:
        service = registry.get(name)
        for id_, entry in entries.items():
            if not _exists(service, system_identity, id_):
                service.create(system_identity, entry)
    for name in ("affiliations", "funders", "subjects"):
        registry.get(name).indexer.refresh()
    vocabulary_service.indexer.refresh()
