"""``teleconsult nodes``: the cluster's nodes, live or lost, with their load, from Redis."""

from __future__ import annotations

import json
import time

from rooms.nodes import NodeDirectory
from rooms.redis_connection import RedisOptions

_COLUMNS = "{:<28} {:<6} {:<9} {:<16} {:>8} {:>8} {:>6} {:>9} {:>6}"


async def print_nodes(store_url: str, options: RedisOptions, as_json: bool) -> int:
    """Print every known node; returns the exit status (1 when a node is lost)."""
    directory = NodeDirectory(store_url, options)
    try:
        views = await directory.nodes()
    finally:
        await directory.close()
    rows = [view.to_wire() for view in views]
    if as_json:
        print(json.dumps({"nodes": rows}, indent=2))
    else:
        print(
            _COLUMNS.format(
                "node",
                "live",
                "draining",
                "media",
                "consult.",
                "capacity",
                "peers",
                "pkt/s",
                "cpu%",
            )
        )
        for row in rows:
            load = row["load"] or {}
            print(
                _COLUMNS.format(
                    row["node_id"][:28],
                    "yes" if row["live"] else "LOST",
                    "yes" if row["draining"] else "no",
                    str(row["media_address"] or "-"),
                    row["consultations"],
                    row["capacity"] if row["capacity"] is not None else "-",
                    load.get("peers", "-"),
                    load.get("packets_per_s", "-"),
                    load.get("cpu_pct", "-"),
                )
            )
        ages = [time.time() - float(r["heartbeat_at"]) for r in rows if r["heartbeat_at"]]
        if ages:
            print(f"last heartbeats {min(ages):.1f}-{max(ages):.1f} s ago")
    return 1 if any(not row["live"] for row in rows) else 0
