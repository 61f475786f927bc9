# Part of invenio-stats-dashboard (MIT License).
"""One run's list of communities in Redis, shared by every worker taking part.

A run puts its communities (``global`` first: it is the largest) and its
parameters in Redis; any number of workers — the process that started the
run and Celery workers running ``aggregate_run_worker`` — take communities
one at a time and run that community's series in order (each snapshot after
its delta), then record the outcome. Nothing of the run lives in one
process's memory: a worker killed with SIGKILL loses its lease
(``aggrun:<run>:worker:<token>``, renewed while it lives), and the community
it held is put back for another worker. The unit locks and bookmarks in the
cluster keep two runs (or a re-queued community) from ever computing the
same days at once.
"""

import json
import time
import uuid

from ..utils.jobs import JobLock, holder, lease_seconds, redis_client

RUN_TTL = 2 * 86400  # keys of a run nobody finished (its starter was killed)
PREFIX = "aggrun:"
# Take the next community and say who holds it, in one step (no moment where
# a community is taken by nobody).
_CLAIM = """local c = redis.call('lpop', KEYS[1])
if c then redis.call('hset', KEYS[2], c, ARGV[1]) end
return c"""


class RunQueue:
    """The communities of one run: to do, claimed (by which worker), finished."""

    def __init__(self, run_id=None, client=None):
        """Bind to a run (a new id if none)."""
        self.run_id = run_id or uuid.uuid4().hex
        self.client = client or redis_client()

    def key(self, part):
        """Redis key of one part of the run."""
        return f"{PREFIX}{self.run_id}:{part}"

    def create(self, communities, params):
        """Start the run: its parameters and its communities, in order."""
        pipe = self.client.pipeline()
        pipe.set(self.key("params"), json.dumps(params), ex=RUN_TTL)
        pipe.delete(self.key("todo"), self.key("claims"), self.key("done"),
                    self.key("stop"))
        if communities:
            pipe.rpush(self.key("todo"), *communities)
            pipe.expire(self.key("todo"), RUN_TTL)
        pipe.execute()

    def params(self):
        """The run's parameters, or None when the run is over."""
        raw = self.client.get(self.key("params"))
        return json.loads(raw) if raw else None

    def claim(self, worker):
        """The next community for ``worker`` (its lease name), or None."""
        value = self.client.eval(_CLAIM, 2, self.key("todo"), self.key("claims"), worker)
        if value is None:
            return None
        self.client.expire(self.key("claims"), RUN_TTL)
        return value.decode() if isinstance(value, bytes) else value

    def finish(self, community_id, outcome):
        """Record what the run did for a community."""
        self.client.hset(self.key("done"), community_id, json.dumps(outcome))
        self.client.expire(self.key("done"), RUN_TTL)

    def outcomes(self):
        """``{community: outcome}`` of every finished community."""
        return {k.decode(): json.loads(v)
                for k, v in self.client.hgetall(self.key("done")).items()}

    def request_stop(self, reason):
        """Every worker of the run stops at its next check (first reason kept)."""
        self.client.set(self.key("stop"), reason, nx=True, ex=RUN_TTL)

    def stop_reason(self):
        """Why the run stops, or None."""
        raw = self.client.get(self.key("stop"))
        return raw.decode() if raw else None

    def requeue_lost(self):
        """Put back the communities whose worker died before finishing them."""
        done = set(self.client.hkeys(self.key("done")))
        lost = []
        for community, worker in self.client.hgetall(self.key("claims")).items():
            if community in done or holder(worker.decode(), self.client) is not None:
                continue
            if self.client.hdel(self.key("claims"), community):
                self.client.lpush(self.key("todo"), community)
                lost.append(community.decode())
        return lost

    def busy(self):
        """Whether some community is still to do or being done."""
        done = set(self.client.hkeys(self.key("done")))
        claimed = set(self.client.hkeys(self.key("claims")))
        return bool(self.client.llen(self.key("todo"))) or bool(claimed - done)

    def in_progress(self):
        """Communities a live worker is doing now."""
        done = set(self.client.hkeys(self.key("done")))
        return [c.decode() for c, w in self.client.hgetall(self.key("claims")).items()
                if c not in done and holder(w.decode(), self.client) is not None]

    def delete(self):
        """Forget the run (its outcomes were read)."""
        self.client.delete(*(self.key(p) for p in ("params", "todo", "claims", "done",
                                                   "stop")))


class Worker:
    """One worker's lease on a run: communities it claims die with it."""

    def __init__(self, queue):
        """A unique lease name; taken by :meth:`__enter__`."""
        self.queue = queue
        self.name = f"{PREFIX}{queue.run_id}:worker:{uuid.uuid4().hex[:12]}"
        self.lock = JobLock(self.name, lease=lease_seconds(), client=queue.client,
                            job="aggregation worker")

    def __enter__(self):
        """Take the lease (renewed while the worker lives)."""
        self.lock.acquire()
        return self

    def __exit__(self, *exc):
        """Give it back."""
        self.lock.release()
        return False

    def communities(self):
        """Claim communities one at a time until none is left or the run stops."""
        while not self.queue.stop_reason() and not self.lock.lost.is_set():
            community_id = self.queue.claim(self.name)
            if community_id is None:
                return
            yield community_id


def wait(queue, work, stop=None, poll=0.5):
    """Until every community is finished: re-queue lost ones, and do them (``work()``).

    ``stop()`` is asked meanwhile (it may stop the run); a stopped run waits
    only for the communities live workers are finishing.
    """
    while True:
        if (stop and stop()) or queue.stop_reason():
            if not queue.in_progress():
                return
        elif not queue.busy():
            return
        elif queue.requeue_lost():
            work()
            continue
        time.sleep(poll)
