# Part of invenio-stats-dashboard (MIT License).
"""How readers and writers reach a month while it is migrated — every event, exactly once.

* Before the switch the stock index serves the month through the read alias,
  and the enriched index joins that alias **filtered**: it shows only what
  live writes routed to it (the indexer writes a month to its enriched index
  as soon as that exists) and hides the migration's copies (marked
  ``migrated``), which the stock index still serves.
* The freeze write-blocks the stock index and waits until no write is in
  flight on it, so the copy that follows is complete.
* The switch is one atomic ``_aliases`` call: the enriched index takes the
  read alias unfiltered and the stock index leaves it (the current month's
  stock index is replaced by a write alias of the same name).

A month that already reads from its enriched index keeps it at every step:
running a finished month again never hides it.
"""

import time

from .server_side import MIGRATED_FIELD

#: Filter of the enriched index's read alias while its month is migrated.
LIVE_ONLY = {"bool": {"must_not": {"term": {MIGRATED_FIELD: True}}}}


def _serves(aliases, read_alias):
    """Whether ``aliases`` (an index's) put it in ``read_alias`` unfiltered."""
    return read_alias in aliases and not (aliases[read_alias] or {}).get("filter")


def prepare_target(client, state, read_alias, completed=False):
    """Create the enriched index, or repair its aliases, before copying into it.

    Returns the actions taken (for the report); readers see every event
    before, during and after.
    """
    target = f"{state.stock_name}-v2.0.0"
    if state.target is None:
        client.indices.create(index=target, body={
            "aliases": {read_alias: {"filter": LIVE_ONLY}}})
        state.target, state.target_aliases = target, {read_alias: {"filter": LIVE_ONLY}}
        if state.source is not None and read_alias not in state.source_aliases:
            # Its enriched index was deleted by hand after a switch: the stock
            # index is the month's only copy, so it serves it again.
            client.indices.update_aliases(body={"actions": [
                {"add": {"index": state.source, "alias": read_alias}}]})
            state.source_aliases[read_alias] = {}
        return ["created"]
    client.indices.put_mapping(index=target, body={  # made by an older version
        "properties": {MIGRATED_FIELD: {"type": "boolean"}}})
    source_serves = state.source is not None and read_alias in state.source_aliases
    mine = state.target_aliases.get(read_alias)
    if source_serves:  # the stock index serves: ours shows live writes only
        wanted, extra = {"filter": LIVE_ONLY}, []
    elif _serves(state.target_aliases, read_alias):
        return []  # a finished month run again: the enriched index keeps serving it
    elif completed or state.source is None:  # nobody serves it: the complete one does
        wanted, extra = {}, []
    else:  # hidden (a run of an older version): both serve, split as above
        wanted, extra = {"filter": LIVE_ONLY}, [
            {"add": {"index": state.source, "alias": read_alias}}]
    if mine is not None and (mine or {}).get("filter") == wanted.get("filter") and not extra:
        return []
    actions = [{"remove": {"index": target, "alias": read_alias}}] if mine is not None else []
    actions += [{"add": {"index": target, "alias": read_alias, **wanted}}, *extra]
    client.indices.update_aliases(body={"actions": actions})
    state.target_aliases[read_alias] = wanted
    return actions


def freeze(client, source, drain_timeout=10.0):
    """Write-block ``source`` and wait until no write is in flight on it.

    A bulk that passed the block check before the block still lands; the
    shard's ``index_current`` counts it until it has. Then refresh, so the
    copy that follows sees every event. Seconds only in the worst case.
    """
    client.indices.put_settings(index=source, body={"index.blocks.write": True})
    deadline = time.monotonic() + drain_timeout
    quiet = 0
    while time.monotonic() < deadline and quiet < 2:
        stats = client.indices.stats(index=source, metric="indexing")
        current = stats["_all"]["primaries"].get("indexing", {}).get("index_current", 0)
        quiet = quiet + 1 if not current else 0
        if quiet < 2:
            time.sleep(0.05)
    client.indices.refresh(index=source)


def unfreeze(client, source):
    """Lift the write block (the stock index is left as it was)."""
    client.indices.put_settings(index=source, body={"index.blocks.write": None},
                                ignore=[404])


def switch(client, state, read_alias, current):
    """The enriched index takes over the month, in one atomic call.

    Current month: the stock index is removed and its name becomes a write
    alias of the enriched index (writers that still use the name keep
    working). Past month: the stock index just leaves the read alias.
    """
    target = state.target
    actions = []
    if read_alias in state.target_aliases:
        actions.append({"remove": {"index": target, "alias": read_alias}})
    actions.append({"add": {"index": target, "alias": read_alias}})
    if current:
        actions += [{"remove_index": {"index": state.source}},
                    {"add": {"index": target, "alias": state.stock_name,
                             "is_write_index": True}}]
    elif read_alias in state.source_aliases:
        actions.append({"remove": {"index": state.source, "alias": read_alias}})
    client.indices.update_aliases(body={"actions": actions})
    state.target_aliases = {read_alias: {}}
    if current:
        state.target_aliases[state.stock_name] = {"is_write_index": True}
        state.source = None
    else:
        state.source_aliases.pop(read_alias, None)
