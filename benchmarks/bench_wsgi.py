# Part of invenio-stats-dashboard (MIT License).
"""The benchmark's WSGI application: the instance's API app under ``/api`` plus one
empty route, the same for werkzeug's threaded server and for gunicorn workers
(``gunicorn bench_wsgi:application``, each worker process builds its own).
"""

from flask import Response
from werkzeug.exceptions import NotFound
from werkzeug.middleware.dispatcher import DispatcherMiddleware

EMPTY_ROUTE = "/_bench/empty"


def bench_app():
    """``(flask app, wsgi callable)``: create_api with ``/_bench/empty``, mounted at ``/api``."""
    from invenio_app.factory import create_api

    app = create_api()

    def bench_empty():
        return Response(b"{}", status=200, mimetype="application/json")

    app.add_url_rule(EMPTY_ROUTE, "bench_empty", bench_empty, methods=["GET", "POST"])
    return app, DispatcherMiddleware(NotFound(), {"/api": app})


def __getattr__(name):  # gunicorn imports ``application``: build it only then
    if name == "application":
        return bench_app()[1]
    raise AttributeError(name)
