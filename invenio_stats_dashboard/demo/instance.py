# Part of invenio-stats-dashboard (MIT License).
"""Create the demo instance's storage: the usual ``invenio`` commands, in one process.

A fresh instance needs ``invenio db init create``, ``files location create``,
``index init``, ``queues declare`` and ``roles create``; each command run from
the shell starts the whole application again (about ten seconds). Here the
same commands run against one already created app, with the instance's own
configuration (so ``index init`` puts every template the installed extension
has, as it would on a real instance).
"""

import contextlib
import sys

from flask.cli import ScriptInfo


def storage_commands(data_dir):
    """The commands, in order, as they would be typed after ``invenio``."""
    return [
        ["db", "init", "create"],
        ["files", "location", "create", "--default", "default-location", str(data_dir)],
        ["index", "init"],
        ["queues", "declare"],
        ["roles", "create", "administration"],
    ]


def run_command(app, args):
    """Run ``invenio <args>`` against ``app``; its output goes to stderr (the log)."""
    from invenio_app.cli import cli

    with contextlib.redirect_stdout(sys.stderr):
        cli.main(args=list(args), prog_name="invenio",
                 obj=ScriptInfo(create_app=lambda: app), standalone_mode=False)


#: Indices created on first write (events, aggregations, our logs, jobs, audit).
DYNAMIC_STEMS = ("events-stats-", "stats-", "job-logs", "auditlog")


def owned_names(names, prefix, stems):
    """The names of ``names`` that are ``prefix`` + one of ``stems`` + anything.

    Another instance may use a longer prefix (``demo-other-``): its names
    start with ours but continue with no stem of ours, so they are kept.
    """
    return sorted(n for n in names if n.startswith(prefix) and n[len(prefix):].startswith(stems))


def delete_search_data(app):
    """Delete the instance's indices and templates (and only the instance's)."""
    from invenio_search.proxies import current_search, current_search_client as client

    with app.app_context():
        prefix = app.config["SEARCH_INDEX_PREFIX"]
        stems = tuple(current_search.mappings) + tuple(current_search.templates) + tuple(
            current_search.index_templates) + tuple(current_search.component_templates)
        stems += DYNAMIC_STEMS
        pattern = f"{prefix}*"
        indices = client.indices.get(index=pattern, expand_wildcards="all", ignore=[404])
        for name in owned_names(indices if "error" not in indices else (), prefix, stems):
            client.indices.delete(index=name, ignore=[404])
        kinds = (
            (client.indices.get_index_template, "index_templates",
             client.indices.delete_index_template),
            (client.cluster.get_component_template, "component_templates",
             client.cluster.delete_component_template),
        )
        for get, key, delete in kinds:
            found = get(name=pattern, ignore=[404]).get(key, [])
            for name in owned_names({t["name"] for t in found}, prefix, stems):
                delete(name=name, ignore=[404])
        legacy = client.indices.get_template(name=pattern, ignore=[404])
        for name in owned_names(set(legacy) - {"status", "error"}, prefix, stems):
            client.indices.delete_template(name=name, ignore=[404])


def reset_storage(app, data_dir):
    """Drop the instance's database and search data, then create its storage anew."""
    from invenio_db import db
    from sqlalchemy_utils import database_exists

    delete_search_data(app)
    with app.app_context():
        url = db.engine.url.render_as_string(hide_password=False)
        if database_exists(url):
            run_command(app, ["db", "destroy", "--yes-i-know"])
    for args in storage_commands(data_dir):
        run_command(app, args)
