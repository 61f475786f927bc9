# Part of invenio-stats-dashboard (MIT License).
"""Readable reports of an aggregation run (CLI and task)."""


def format_report(result, verbose=False):
    """``AGGREGATION RESULTS`` with one block per series, then ``AGGREGATION SUMMARY``."""
    lines = ["AGGREGATION RESULTS", "=" * 40]
    for r in result["results"]:
        lines.append(f"{r['aggregator']}: {r['status']} — {r['docs_indexed']} documents, "
                     f"{r['communities_processed']}/{r['communities_count']} communities"
                     + (f", {r['errors']} error(s)" if r["errors"] else "")
                     + ("" if r.get("caught_up", True) else ", backlog left")
                     + f" ({r.get('duration_formatted', '0.0 s')})")
        for detail in r["error_details"][:3]:
            lines.append(f"    {detail}")
        if verbose:
            for community_id, info in r["communities"].items():
                why = info.get("error") or info.get("stopped") or info.get("skipped")
                span = (f"{info['first_day']}..{info['last_day']} ({info['days']} days)"
                        if info.get("days") else "no days")
                lines.append(f"    {community_id}: {span}, {info['docs_indexed']} documents,"
                             f" {info['seconds']:.1f} s" + (f", {why}" if why else "")
                             + (f" [{info['worker']}]" if info.get("worker") else ""))
    lines += ["", "AGGREGATION SUMMARY", "=" * 40]
    communities = {c for r in result["results"] for c in r["communities"]}
    lines.append(f"Documents: {sum(r['docs_indexed'] for r in result['results'])}, "
                 f"errors: {sum(r['errors'] for r in result['results'])}, "
                 f"communities: {len(communities)}, time: {result['total_duration']:.1f} s")
    if result.get("stopped"):
        lines.append(f"Stopped: {result['stopped']} (bookmarks are at the last complete "
                     "day: run again to continue)")
    elif not result.get("caught_up", True):
        lines.append("Backlog left: every series did one catch-up step "
                     "(COMMUNITY_STATS_CATCHUP_INTERVAL days); run again, or use "
                     "--until-caught-up")
    return "\n".join(lines)
