# Part of invenio-stats-dashboard (MIT License).
"""What differs between InvenioRDM 12, 13 and 14, detected from the installed code.

Never from version numbers: a patched 12 (``apply_patches.sh``) has 13's hooks,
and 14 renamed one. Each difference is data here:

* ``SERVICES``: which service config's components list each of our components
  joins, and under which setting (read from the config class's ``FromConfig``,
  with the owning package's default list — 14's invenio-requests has one).
  A service config without such a setting is an unpatched 12.
* ``MEMBERSHIP_HOOKS``: the hook names each kind of membership change arrives
  under in the releases we know (14 calls ``remove_community_from_record``
  where 13 called ``remove_community``); ``hook_problems`` reads the installed
  services' source for the names they really call, so a future rename is
  reported at start-up instead of silently losing changes.
* ``community_access``: the community access fields the installed schema knows
  (12 has no ``record_submission_policy``).
"""

import inspect
import re
from importlib import import_module

#: our component -> (service config class, service class) it attaches to.
SERVICES = {
    "RecordCommunityEventComponent": (
        "invenio_rdm_records.services.config:RDMRecordServiceConfig",
        "invenio_rdm_records.services.services:RDMRecordService"),
    "RecordCommunityEventTrackingComponent": (
        "invenio_rdm_records.services.config:RDMRecordCommunitiesConfig",
        "invenio_rdm_records.services.communities.service:RecordCommunitiesService"),
    "CommunityAcceptedEventComponent": (
        "invenio_requests.services.events.config:RequestEventsServiceConfig",
        "invenio_requests.services.events.service:RequestEventsService"),
    "CommunityCustomFieldsDefaultsComponent": (
        "invenio_communities.communities.services.config:CommunityServiceConfig",
        "invenio_communities.communities.services.service:CommunityService"),
}

#: our component -> {change: hook names (any release)}; one must be called.
MEMBERSHIP_HOOKS = {
    "RecordCommunityEventComponent": {
        "publication": ("publish",),
        "deletion": ("delete_record",),
        "restoration": ("restore_record",),
    },
    "RecordCommunityEventTrackingComponent": {
        "direct addition": ("add_community",),
        "removal": ("remove_community", "remove_community_from_record"),
        "bulk addition": ("bulk_add",),
    },
    "CommunityAcceptedEventComponent": {"request acceptance": ("create",)},
}

#: Community access fields that not every release's schema has.
OPTIONAL_COMMUNITY_ACCESS = ("record_submission_policy",)


def load(path):
    """Import ``module:attribute``."""
    module, _, name = path.partition(":")
    return getattr(import_module(module), name)


def components_setting(config_cls):
    """``(setting, default list)`` a service config reads its components from.

    ``None`` when its components are fixed (InvenioRDM 12 without patches).
    """
    for klass in config_cls.__mro__:
        value = vars(klass).get("components")
        if value is None:
            continue
        key = getattr(value, "config_key", None)
        return (key, _package_default(config_cls, key) or list(value.default or [])) \
            if key else None
    return None


def _package_default(config_cls, key):
    """The owning package's ``config.py`` value for ``key`` (14: invenio-requests)."""
    try:
        package = import_module(config_cls.__module__.split(".")[0] + ".config")
    except ImportError:
        return None
    return list(getattr(package, key, None) or []) or None


def called_hooks(service_cls):
    """Hook names the service passes to ``run_components`` (its whole MRO)."""
    names = set()
    for klass in service_cls.__mro__:
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        names.update(re.findall(r"run_components\(\s*[\"'](\w+)[\"']", source))
    return names


def hook_problems(components):
    """Human-readable problems: changes our components would not see here.

    :param components: ``{name: component class}`` of ours.
    """
    problems = []
    for name, changes in MEMBERSHIP_HOOKS.items():
        config_path, service_path = SERVICES[name]
        if components_setting(load(config_path)) is None:
            problems.append(f"{config_path} has no components setting: InvenioRDM 12 "
                            "needs apply_patches.sh")
            continue
        called = called_hooks(load(service_path))
        for change, hooks in changes.items():
            usable = [h for h in hooks if h in called and hasattr(components[name], h)]
            if not usable:
                problems.append(f"{service_path} calls none of {', '.join(hooks)} "
                                f"({change}s would not be recorded)")
    return problems


def community_access(**values):
    """The community ``access`` data, keeping only fields the installed schema has."""
    from invenio_communities.communities.schema import CommunityAccessSchema

    known = CommunityAccessSchema().fields
    return {k: v for k, v in values.items()
            if k in known or k not in OPTIONAL_COMMUNITY_ACCESS}
