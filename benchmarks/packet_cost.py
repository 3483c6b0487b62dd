"""Relay CPU per forwarded packet, alternating between source trees (a noisy machine's method).

``python -m benchmarks.packet_cost TREE [TREE ...] [--rounds N] [--out DIR]`` runs
``teleconsult bench relay --consultations 8 --duration 20 --json`` from each tree's root with
that tree's own ``.venv``, one tree after the other, ``--rounds`` times (at most 10), and times
every packet the relay forwards (see ``benchmarks/_packet_clock/sitecustomize.py``): the CPU
time of the relay's thread for the whole per-packet path, from the decrypted packet to every
subscriber's send. A packet's own CPU time does not count other processes' load, and its
median over tens of thousands of packets hides the rest of the noise; alternating the trees
spreads slower and faster spells of the machine over all of them. Prints, per tree, the
median of each round's median (video, audio, µs) beside ``bench relay``'s own window figures,
and the median ratio to the first tree's figure in the same round.
``--replay`` instead runs ``benchmarks/_packet_clock/replay.py`` in each tree: one consultation
in-process, then one publisher's latest packet replayed, numbered on, straight into the relay's
receivers in a tight loop (no event-loop turn, hot caches; every packet still goes the whole
path), batch by batch, first as it is, then with SRTP protect and ``sendto`` (the same C calls
in every revision, and the noisiest part) stubbed out; ``video_packet_us`` and
``audio_packet_us`` are then the least CPU time per packet of a batch without them (the batch
least disturbed by the machine's other work), with the median batch and the least batch with
the send beside them.
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
REPLAY_PACKETS = 12_000  # BATCHES * BATCH_PACKETS of _packet_clock/replay.py
_HOOK_DIR = Path(__file__).resolve().parent / "_packet_clock"
_BENCH = ["bench", "relay", "--consultations", "8", "--duration", "20", "--json"]
_WINDOW_FIGURES = ("cpu_per_video_packet_us", "cpu_per_video_stream_pct", "server_cpu_pct")


def run_relay(tree: Path, out: Path) -> dict[str, Any]:
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


def run_replay(tree: Path, out: Path) -> dict[str, Any]:
    """One replay run in ``tree`` (``_packet_clock/replay.py``): per kind, the least and the
    median CPU time per packet over its batches (µs)."""
    completed = subprocess.run(
        [str(tree / ".venv" / "bin" / "python"), "-"],
        input=(_HOOK_DIR / "replay.py").read_text(),
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=True,
    )
    out.write_text(completed.stdout)
    measured = json.loads(completed.stdout)
    row: dict[str, Any] = {}
    for kind in ("video", "audio"):
        figures = measured[kind]
        if figures["checked_sent"] != REPLAY_PACKETS:
            raise RuntimeError(f"{tree}: replayed {kind} packets were not all forwarded")
        row[f"{kind}_packet_us"] = min(figures["batch_us_without_send"])
        row[f"{kind}_median_batch_us"] = round(
            statistics.median(figures["batch_us_without_send"]), 2
        )
        row[f"{kind}_with_send_us"] = min(figures["batch_us"])
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
    parser.add_argument(
        "--replay", action="store_true", help="replay packets in one call instead (see above)"
    )
    args = parser.parse_args(argv)
    rounds = max(1, min(args.rounds, MAX_ROUNDS))
    args.out.mkdir(parents=True, exist_ok=True)
    rows: dict[str, list[dict[str, Any]]] = {str(tree): [] for tree in args.trees}
    for round_number in range(1, rounds + 1):
        for index, tree in enumerate(args.trees):
            run = run_replay if args.replay else run_relay
            row = run(tree.resolve(), args.out / f"{index}.{round_number}.json")
            rows[str(tree)].append(row)
            print(json.dumps({"tree": str(tree), "round": round_number, **row}), flush=True)
    first = rows[str(args.trees[0])]
    for tree, tree_rows in rows.items():
        result = {"tree": tree, "rounds": rounds, "median": summary(tree_rows)}
        result["median_ratio_to_first_tree"] = paired_ratios(tree_rows, first)
        print(json.dumps(result))
    return 0


def paired_ratios(
    rows: list[dict[str, Any]], first: list[dict[str, Any]]
) -> dict[str, float | None]:
    """Per packet kind, the median over rounds of this tree's figure over the first tree's in
    the same round: a slow spell of the machine that spans a round cancels out."""
    result: dict[str, float | None] = {}
    for name in ("video_packet_us", "audio_packet_us"):
        pairs = zip(rows, first, strict=True)
        ratios = [row[name] / base[name] for row, base in pairs if row[name] and base[name]]
        result[name] = round(statistics.median(ratios), 3) if ratios else None
    return result


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
