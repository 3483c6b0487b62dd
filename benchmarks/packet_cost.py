"""Relay CPU per forwarded packet, alternating between source trees (a noisy machine's method).

``python -m benchmarks.packet_cost TREE [TREE ...] [--rounds N] [--out DIR]`` runs
``teleconsult bench relay --consultations 8 --duration 20 --json`` from each tree's root with
that tree's own ``.venv``, one tree after the other, ``--rounds`` times (at most 10), and times
every packet the relay forwards (see ``benchmarks/_packet_clock/sitecustomize.py``): the CPU
time of the relay's thread for the whole per-packet path, from the decrypted packet to every
subscriber's send. A packet's own CPU time does not count other processes' load, and its
median over tens of thousands of packets hides the rest of the noise; alternating the trees
spreads slower and faster spells of the machine over all of them. Prints, per tree, the
median of each round's median (video, audio, µs) beside ``bench relay``'s own window figures.
Each run is bounded by ``bench relay`` itself and a timeout; traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

MAX_ROUNDS = 10
RUN_TIMEOUT_S = 300
_HOOK_DIR = Path(__file__).resolve().parent / "_packet_clock"
_BENCH = ["bench", "relay", "--consultations", "8", "--duration", "20", "--json"]
_WINDOW_FIGURES = ("cpu_per_video_packet_us", "cpu_per_video_stream_pct", "server_cpu_pct")


def run_once(tree: Path, out: Path) -> dict[str, Any]:
    """One ``bench relay`` run of ``tree``: its packet medians (µs) and window figures."""
    env = dict(os.environ, PACKET_COST_OUT=str(out))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_HOOK_DIR), env.get("PYTHONPATH")]))
    completed = subprocess.run(
        [str(tree / ".venv" / "bin" / "teleconsult"), *_BENCH],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=True,
    )
    window = json.loads(completed.stdout)["results"][0]
    samples = json.loads(out.read_text())
    row = {f"{kind}_packet_us": packet_median_us(samples[kind]) for kind in ("video", "audio")}
    row.update({name: window[name] for name in _WINDOW_FIGURES})
    return row


def packet_median_us(samples_ns: list[int]) -> float | None:
    return round(statistics.median(samples_ns) / 1000, 1) if samples_ns else None


def summary(rows: list[dict[str, Any]]) -> dict[str, float | None]:
    """The median over rounds of each figure (``None`` where no round had one)."""
    result: dict[str, float | None] = {}
    for name in rows[0]:
        values = [row[name] for row in rows if row[name] is not None]
        result[name] = round(statistics.median(values), 2) if values else None
    return result


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.packet_cost")
    parser.add_argument("trees", nargs="+", type=Path, help="source trees, each with its .venv")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("packet-cost"))
    args = parser.parse_args(argv)
    rounds = max(1, min(args.rounds, MAX_ROUNDS))
    args.out.mkdir(parents=True, exist_ok=True)
    rows: dict[str, list[dict[str, Any]]] = {str(tree): [] for tree in args.trees}
    for round_number in range(1, rounds + 1):
        for index, tree in enumerate(args.trees):
            row = run_once(tree.resolve(), args.out / f"{index}.{round_number}.json")
            rows[str(tree)].append(row)
            print(json.dumps({"tree": str(tree), "round": round_number, **row}), flush=True)
    for tree, tree_rows in rows.items():
        print(json.dumps({"tree": tree, "rounds": rounds, "median": summary(tree_rows)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
