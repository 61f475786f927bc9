# Part of invenio-stats-dashboard (MIT License).
"""A child process of the aggregation tests, with the test family registered.

    python tests/agg_child.py invenio community-stats aggregate ...
    python tests/agg_child.py celery worker --pool solo ...

Configuration comes from ``INVENIO_*`` variables (the ``child_env``
fixture), as for any ``invenio`` command.
"""

import sys

import agg_family

if __name__ == "__main__":
    agg_family.register()
    kind, args = sys.argv[1], sys.argv[2:]
    if kind == "invenio":
        from invenio_app.cli import cli

        sys.argv = ["invenio", *args]
        sys.exit(cli())
    from invenio_app.celery import celery

    celery.worker_main(args)
