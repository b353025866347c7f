"""What /metrics costs the real-time path: `bench/fanout.py` with the metrics
on and off (METRICS_ENABLED=1 / 0 in the servers' and the bench's
environment), alternating, so a noisy shared machine weighs on both alike.

    .venv/bin/python bench/metrics_overhead.py                 # 3 rounds, 2,000 sockets
    .venv/bin/python bench/metrics_overhead.py --rounds 1 -- --clients 200
    .venv/bin/python bench/metrics_overhead.py --micro         # the hub's hand-out alone

Arguments after `--` go to bench/fanout.py (default: its fan-out mode,
2,000 sockets, 1 daphne). DATABASE_URL and REDIS_URL as for fanout.py (its
Redis database is flushed). Prints each run's fan-out summary line, then
the p50 / p99 of every run side by side.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

FANOUT = Path(__file__).resolve().parent / "fanout.py"
SUMMARY = re.compile(r"^fanout: .*?p50 (?P<p50>[\d.]+) s p99 (?P<p99>[\d.]+) s")


def run_fanout(enabled: bool, fanout_args: list[str]) -> str:
    """One fanout.py run; its summary line."""
    env = {**os.environ, "METRICS_ENABLED": "1" if enabled else "0"}
    result = subprocess.run(
        [sys.executable, str(FANOUT), *fanout_args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [line for line in result.stdout.splitlines() if SUMMARY.match(line)]
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"fanout.py failed ({result.returncode}):\n{result.stdout[-3000:]}")
    return lines[-1]


def hand_out_micro(sockets: int, repeats: int) -> None:
    """The hub's own cost, in this process and without any network: one
    reveal's `game.events` message (a 2,000-player board, ~150 KB) handed to
    `sockets` followers that only count, metrics on and off alternately."""
    import asyncio
    import json
    import statistics
    import time

    sys.path.insert(0, str(FANOUT.parent.parent))  # the project, for `config`
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")
    os.environ.pop("REDIS_URL", None)  # the in-memory layer: no Redis needed
    import django

    django.setup()
    from config import metrics
    from leaderboard.fanout import Hub

    class Counting:
        socket_id = "bench"
        got = 0

        async def game_event(self, message: dict) -> None:
            Counting.got += 1

    players = [{"userId": n, "name": f"Player {n}", "totalScore": n} for n in range(2000)]
    text = json.dumps({"type": "leaderboard:update", "gameId": 1, "players": players})

    async def measure() -> dict[bool, list[float]]:
        hub = Hub()
        hub.games[1] = {Counting() for _ in range(sockets)}
        times: dict[bool, list[float]] = {True: [], False: []}
        for number in range(repeats * 2):
            enabled = number % 2 == 0
            metrics.ENABLED = enabled
            message = {"type": "game.events", "events": [(1, number + 1, text, None)]}
            message["committed_at"] = time.time()
            started = time.perf_counter()
            await hub.dispatch(message)
            times[enabled].append(time.perf_counter() - started)
        return times

    times = asyncio.run(measure())
    print(f"hand-out of a {len(text) / 1024:.0f} KB frame to {sockets} sockets, {repeats} each:")
    for enabled in (True, False):
        values = sorted(times[enabled])
        print(
            f"  metrics {'on ' if enabled else 'off'}: median {statistics.median(values) * 1e3:.3f}"
            f" ms, p90 {values[int(len(values) * 0.9)] * 1e3:.3f} ms"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="on/off pairs (default 3)")
    parser.add_argument(
        "--micro",
        action="store_true",
        help="only the hub's hand-out in this process, no servers (bench of the code itself)",
    )
    parser.add_argument("fanout_args", nargs="*", help="after --: bench/fanout.py's arguments")
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)
    if args.micro:
        hand_out_micro(sockets=2000, repeats=200)
        return
    figures: list[tuple[str, float, float]] = []
    for number in range(args.rounds):
        # Alternate which goes first, so neither always follows the other.
        order = (True, False) if number % 2 == 0 else (False, True)
        for enabled in order:
            label = "metrics on " if enabled else "metrics off"
            line = run_fanout(enabled, args.fanout_args)
            print(f"round {number + 1}, {label}: {line}")
            match = SUMMARY.match(line)
            assert match is not None
            figures.append((label, float(match["p50"]), float(match["p99"])))
    print("\nrun  metrics       p50 s   p99 s")
    for index, (label, p50, p99) in enumerate(figures, 1):
        print(f"{index:<4} {label:<12} {p50:6.3f}  {p99:6.3f}")


if __name__ == "__main__":
    main()
