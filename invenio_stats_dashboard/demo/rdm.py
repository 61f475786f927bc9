# Part of invenio-stats-dashboard (MIT License).
"""Real InvenioRDM operations used by the test fixtures and the demo loader.

Every change goes through the RDM services (records, files, record-communities,
requests), so the service components that record statistics see exactly what
a user's action would produce. ``backdate_*`` rewrite database timestamps to
build a realistic *legacy* history (records created over past years); they are
for tests and the demo only.
"""

from contextlib import contextmanager
from contextvars import ContextVar
from io import BytesIO

from invenio_access.permissions import any_user, authenticated_user, system_identity
from invenio_accounts.proxies import current_datastore
from invenio_communities.proxies import current_communities
from invenio_db import db
from invenio_rdm_records.proxies import current_rdm_records, current_rdm_records_service
from invenio_requests.proxies import current_requests_service


def make_identity(user):
    """An authenticated identity for ``user`` (with its roles)."""
    from flask import current_app
    from invenio_access.utils import get_identity
    from invenio_communities.proxies import current_identities_cache
    from invenio_communities.utils import identity_cache_key, load_community_needs

    identity = get_identity(user)
    identity.provides.add(any_user)
    identity.provides.add(authenticated_user)
    # Community roles, as at login (the loader reads the login session), from
    # the database: a cached list may predate communities created since.
    current_identities_cache.delete(identity_cache_key(identity))
    with current_app.test_request_context():
        load_community_needs(identity)
    return identity


def create_user(email, password="123456", username=None):
    """Create (or fetch) an active, confirmed user."""
    user = current_datastore.get_user(email)
    if user is None:
        user = current_datastore.create_user(
            email=email,
            password=password,
            active=True,
            username=username or email.split("@")[0].replace(".", "-"),
        )
        from datetime import datetime, timezone

        user.confirmed_at = datetime.now(timezone.utc)
        db.session.commit()
    return user


def create_community(identity, slug, title, visibility="public", type_="organization"):
    """Create a community; ``visibility`` is ``public`` or ``restricted``."""
    from ..compat import community_access

    data = {
        "slug": slug,
        "access": community_access(visibility=visibility, members_visibility="public",
                                   record_submission_policy="open", review_policy="open"),
        "metadata": {"title": title, "type": {"id": type_}},
    }
    item = current_communities.service.create(identity, data)
    current_communities.service.indexer.refresh()
    return item


def record_data(title, publication_date, resource_type="dataset", files=False,
                creators_affiliations=(), contributors_affiliations=(),
                languages=(), rights=(), subjects=(), funders=(), publisher=None,
                access="public", record_access="public"):
    """Build RDM record input data from the few facts statistics care about."""
    metadata = {
        "resource_type": {"id": resource_type},
        "title": title,
        "publication_date": publication_date,
        "creators": [{
            "person_or_org": {"type": "personal", "family_name": "Doe",
                              "given_name": "Jane"},
            "affiliations": [{"id": a} for a in creators_affiliations],
        }],
    }
    if contributors_affiliations:
        metadata["contributors"] = [{
            "person_or_org": {"type": "personal", "family_name": "Roe",
                              "given_name": "Rick"},
            "role": {"id": "other"},
            "affiliations": [{"id": a} for a in contributors_affiliations],
        }]
    if languages:
        metadata["languages"] = [{"id": lang} for lang in languages]
    if rights:
        metadata["rights"] = [{"id": r} for r in rights]
    if subjects:
        metadata["subjects"] = [{"id": s} for s in subjects]
    if funders:
        metadata["funding"] = [{"funder": {"id": f}} for f in funders]
    if publisher:
        metadata["publisher"] = publisher
    return {
        "access": {"record": record_access, "files": access},
        "files": {"enabled": bool(files)},
        "metadata": metadata,
    }


def _add_files(identity, draft_id, files):
    """Upload ``files`` ({key: bytes}) to a draft through the files service."""
    service = current_rdm_records_service.draft_files
    service.init_files(identity, draft_id, data=[{"key": k} for k in files])
    for key, content in files.items():
        service.set_file_content(identity, draft_id, key, BytesIO(content))
        service.commit_file(identity, draft_id, key)


def create_record(identity, data, files=None, community_id=None):
    """Create and publish a record, optionally with files and a community.

    ``community_id`` makes the draft a community submission that is accepted
    at publication (the deposit form's "submit to community" path) when the
    identity may include directly; otherwise the record is published first and
    then added directly.
    """
    record = publish_record(identity, data, files)
    if community_id:
        add_to_community(identity, record.id, community_id)
    return current_rdm_records_service.read(identity, record.id)


def publish_record(identity, data, files=None):
    """Create a draft, upload ``files`` and publish; returns the publish result."""
    draft = current_rdm_records_service.create(identity, data)
    if files:
        _add_files(identity, draft.id, files)
    record = current_rdm_records_service.publish(identity, draft.id)
    _refresh()  # publishing indexes without a refresh: a search a moment later may miss it
    return record


def new_version(identity, record_id, publication_date=None, files=None):
    """Publish a new version of ``record_id`` (files re-uploaded if given)."""
    draft = current_rdm_records_service.new_version(identity, record_id)
    data = draft.data
    if publication_date:
        data["metadata"]["publication_date"] = publication_date
    if files:
        data["files"] = {"enabled": True}
    else:
        data["files"] = {"enabled": False}
    draft = current_rdm_records_service.update_draft(identity, draft.id, data)
    if files:
        _add_files(identity, draft.id, files)
    record = current_rdm_records_service.publish(identity, draft.id)
    _refresh()
    return record


def add_to_community(identity, record_id, community_id, require_review=False):
    """Add a published record to a community through the record-communities service.

    With ``require_review`` the inclusion request stays open for the community
    to accept (see :func:`accept_request`); returns the request ids created.
    """
    processed, errors = current_rdm_records.record_communities_service.add(
        identity, record_id,
        {"communities": [{"id": community_id, "require_review": require_review}]},
    )
    if errors:
        raise RuntimeError(f"could not add {record_id} to {community_id}: {errors}")
    _refresh()
    return [p["request_id"] for p in processed]


def accept_request(identity, request_id):
    """Accept an open inclusion request as a community curator/owner."""
    item = current_requests_service.execute_action(identity, request_id, "accept")
    _refresh()
    return item


def remove_from_community(identity, record_id, community_id):
    """Remove a record (its parent) from a community."""
    _processed, errors = current_rdm_records.record_communities_service.remove(
        identity, record_id, {"communities": [{"id": community_id}]}
    )
    if errors:
        raise RuntimeError(f"could not remove {record_id} from {community_id}: {errors}")
    _refresh()


def bulk_add(community_id, record_ids):
    """Add records to a community through the community-records bulk path."""
    current_rdm_records.record_communities_service.bulk_add(
        system_identity, community_id, record_ids
    )
    _refresh()


def delete_record(record_id, reason="spam"):
    """Delete (tombstone) a published record as an administrator would."""
    current_rdm_records_service.delete_record(
        system_identity, record_id,
        {"removal_reason": {"id": reason}, "is_visible": True, "note": "demo"},
    )
    _refresh()


def restore_record(record_id):
    """Restore a deleted record."""
    current_rdm_records_service.restore_record(system_identity, record_id)
    _refresh()


_refresh_skipped = ContextVar("refresh_skipped", default=False)


@contextmanager
def without_refresh():
    """Skip the per-change refreshes inside the block.

    Tests refresh after every change so that their next search sees it; a
    loader that never searches its own writes calls :func:`refresh` once at the
    end instead (the services' own refreshes still happen).
    """
    token = _refresh_skipped.set(True)
    try:
        yield
    finally:
        _refresh_skipped.reset(token)


def refresh():
    """Index what waits in the bulk queue (sibling versions); refresh records and communities."""
    current_rdm_records_service.indexer.process_bulk_queue()
    current_rdm_records_service.indexer.refresh()
    current_communities.service.indexer.refresh()


def _refresh():
    if not _refresh_skipped.get():
        refresh()


# --- legacy history (tests and demo only) -----------------------------------

def backdate_record(record_id, when):
    """Set the ``created`` time of a record version (and its draft row) to ``when``.

    The parent is backdated too when ``when`` is earlier. Re-indexes the record.
    """
    from invenio_rdm_records.records.models import (
        RDMDraftMetadata,
        RDMParentMetadata,
        RDMRecordMetadata,
    )

    record = current_rdm_records_service.record_cls.pid.resolve(record_id)
    for model in (RDMRecordMetadata, RDMDraftMetadata):
        db.session.query(model).filter(model.id == record.id).update(
            {"created": when, "updated": when}, synchronize_session=False
        )
    db.session.query(RDMParentMetadata).filter(
        RDMParentMetadata.id == record.parent.id,
        RDMParentMetadata.created > when,
    ).update({"created": when}, synchronize_session=False)
    db.session.commit()
    db.session.expire_all()  # later reads must see the rewritten rows
    current_rdm_records_service.indexer.index(
        current_rdm_records_service.record_cls.pid.resolve(record_id)
    )
    if not _refresh_skipped.get():
        current_rdm_records_service.indexer.refresh()


def backdate_community(community_id, when):
    """Set a community's ``created`` time (communities predate their records)."""
    from invenio_communities.communities.records.models import CommunityMetadata

    db.session.query(CommunityMetadata).filter(
        CommunityMetadata.id == community_id
    ).update({"created": when}, synchronize_session=False)
    db.session.commit()
    current_communities.service.indexer.index(
        current_communities.service.record_cls.get_record(community_id)
    )


def backdate_requests(record_id, when):
    """Set created/updated of the requests whose topic is ``record_id``, and of their events.

    The membership history dates an acceptance by its ``accepted`` event.
    """
    from invenio_requests.records.models import RequestEventModel, RequestMetadata

    requests = db.session.query(RequestMetadata.id).filter(
        RequestMetadata.json["topic"]["record"].as_string() == record_id)
    ids = [row.id for row in requests]
    db.session.query(RequestMetadata).filter(RequestMetadata.id.in_(ids)).update(
        {"created": when, "updated": when}, synchronize_session=False)
    db.session.query(RequestEventModel).filter(RequestEventModel.request_id.in_(ids)).update(
        {"created": when, "updated": when}, synchronize_session=False)
    db.session.commit()
