# Part of invenio-stats-dashboard (MIT License).
"""Readable reports of an aggregation run (CLI and task)."""


def format_report(result, verbose=False):
    """``AGGREGATION RESULTS`` with one block per series."""
    lines = ["AGGREGATION RESULTS", "=" * 40]
    for r in result["results"]:
        lines.append(f"{r['aggregator']}: {r['status']} — {r['docs_indexed']} documents, "
                     f"{r['communities_processed']}/{r['communities_count']} communities"
                     + (f", {r['errors']} error(s)" if r["errors"] else ""))
        for detail in r["error_details"][:5]:
            lines.append(f"    {detail}")
        if verbose:
            for community_id, info in r["communities"].items():
                if info.get("days"):
                    lines.append(f"    {community_id}: {info['first_day']}..{info['last_day']}"
                                 f" ({info['days']} days), {info['docs_indexed']} documents,"
                                 f" {info['seconds']:.1f} s"
                                 + (f", {info['skipped']}" if info.get("skipped") else ""))
    lines.append(f"Total time: {result['total_duration']:.1f} s")
    return "\n".join(lines)
