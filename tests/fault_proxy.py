# Part of invenio-stats-dashboard (MIT License).
"""An HTTP proxy in front of the real OpenSearch that answers chosen requests itself.

The search client is never patched: a client (or a whole app) pointed at the
proxy talks HTTP to it, and every request the rule does not intercept is
forwarded to the real cluster and answered by it. Intercepted requests get
answers the test cluster cannot give on demand without disturbing everyone
who shares it: the security plugin's 403 (it runs without that plugin), a
busy node's 429, a red cluster status.
"""

import http.client
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


def _error(status, kind, reason):
    cause = {"type": kind, "reason": reason}
    return status, {"error": {"root_cause": [cause], **cause}, "status": status}


def security_exception(action):
    """The security plugin's answer to a user without the privilege for ``action``."""
    return _error(403, "security_exception", f"no permissions for [{action}] and User "
                  "[name=stats, backend_roles=[], requestedTenant=null]")


def rejected_execution():
    """A busy node's answer (full thread-pool queue): worth asking again."""
    return _error(429, "rejected_execution_exception",
                  "rejected execution of coordinating operation")


class FaultProxy:
    """Context manager: ``rule(method, path) -> (status, body) or None`` (forward).

    ``requests`` lists every ``(method, path, intercepted)`` seen, in order.
    """

    def __init__(self, rule, upstream=("127.0.0.1", 9200)):
        """Interception rule and the real cluster's address."""
        self.rule, self.upstream, self.requests = rule, upstream, []
        self._lock = threading.Lock()

    @property
    def port(self):
        """The proxy's port on 127.0.0.1."""
        return self.server.server_address[1]

    def __enter__(self):
        """Start serving in a thread."""
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                with proxy._lock:
                    answer = proxy.rule(self.command, self.path)
                    proxy.requests.append((self.command, self.path, bool(answer)))
                if answer:
                    status, body = answer
                    return self._reply(status, {"content-type": "application/json"},
                                       json.dumps(body).encode())
                conn = http.client.HTTPConnection(*proxy.upstream, timeout=600)
                try:
                    headers = {k: v for k, v in self.headers.items()
                               if k.lower() not in HOP_BY_HOP}
                    conn.request(self.command, self.path, body=body, headers=headers)
                    res = conn.getresponse()
                    data = res.read()
                    self._reply(res.status, {k: v for k, v in res.getheaders()
                                             if k.lower() not in HOP_BY_HOP}, data)
                finally:
                    conn.close()

            def _reply(self, status, headers, data):
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def red_cluster():
    """A cluster-health answer while some primary shard is unassigned."""
    return 200, {"cluster_name": "opensearch", "status": "red", "timed_out": False,
                 "number_of_nodes": 1, "unassigned_shards": 1}


def is_node_stats(path):
    """Whether ``path`` asks for node stats (``cluster:monitor/nodes/stats``)."""
    return path.startswith("/_nodes") and "/stats" in path


def node_stats_forbidden(method, path):
    """Rule: node stats are forbidden (403), everything else is forwarded."""
    return security_exception("cluster:monitor/nodes/stats") if is_node_stats(path) else None
