# Part of invenio-stats-dashboard (MIT License).
"""Cache keys are the same in every process (pure Python, no service).

Web workers, the Celery worker and the CLI each compute the configuration
version that is part of every key: it must not depend on where a function
sits in one process's memory, or no process reads what another stored.
"""

import subprocess
import sys
import types

from invenio_stats_dashboard.config.config import COMMUNITY_STATS_SUBCOUNTS
from invenio_stats_dashboard.services.response_cache import config_version


def _copy_functions(value):
    """The same config with every function a new object (another address, same name)."""
    if isinstance(value, dict):
        return {k: _copy_functions(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_functions(v) for v in value]
    if isinstance(value, types.FunctionType):
        twin = types.FunctionType(value.__code__, value.__globals__, value.__name__)
        twin.__qualname__, twin.__module__ = value.__qualname__, value.__module__
        return twin
    return value


def config(subcounts):
    return {"COMMUNITY_STATS_SUBCOUNTS": subcounts, "STATS_DASHBOARD_LAYOUT": {"a": [1]},
            "STATS_DASHBOARD_COMPONENT_METRICS_REGISTRY": {}}


def test_the_default_subcounts_hold_functions():  # what makes the case real
    assert "<function" in str(COMMUNITY_STATS_SUBCOUNTS)


def test_the_version_ignores_where_functions_live():
    twin = _copy_functions(COMMUNITY_STATS_SUBCOUNTS)
    assert str(twin) != str(COMMUNITY_STATS_SUBCOUNTS)  # other addresses
    assert config_version(config(twin)) == config_version(config(COMMUNITY_STATS_SUBCOUNTS))


def test_another_process_computes_the_same_version():
    code = ("from invenio_stats_dashboard.config.config import COMMUNITY_STATS_SUBCOUNTS as S\n"
            "from invenio_stats_dashboard.services.response_cache import config_version\n"
            "print(config_version({'COMMUNITY_STATS_SUBCOUNTS': S, "
            "'STATS_DASHBOARD_LAYOUT': {'a': [1]}, "
            "'STATS_DASHBOARD_COMPONENT_METRICS_REGISTRY': {}}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == config_version(config(COMMUNITY_STATS_SUBCOUNTS))


def test_a_changed_subcount_is_another_version():
    changed = _copy_functions(COMMUNITY_STATS_SUBCOUNTS)
    first = next(iter(changed.values()))
    block = next(v for v in first.values() if isinstance(v, dict) and v.get("source_fields"))
    block["source_fields"] = block["source_fields"][:-1] or [{"field": "other"}]
    assert config_version(config(changed)) != config_version(config(COMMUNITY_STATS_SUBCOUNTS))
