"""Rounds of one at a time against side by side, alternating, for the benches that time work
against a slow orchestrator (sync_bench's --latency, rerun_bench, poll_bench)."""

from __future__ import annotations

import statistics
from collections.abc import Callable


def side_by_side_rounds(
    one_at_a_time: Callable[[], float],
    side_by_side: Callable[[], float],
    *,
    width: int,
    repeat: int,
) -> None:
    """Time each `repeat` times, alternating, and print each round and the medians (the ratio
    of each round's own pair, then their median)."""
    print(f"| round | one at a time (s) | {width} at a time (s) | speed-up |")
    print("|---|---:|---:|---:|")
    slow_times, fast_times, ratios = [], [], []
    for round_ in range(1, repeat + 1):
        slow, fast = one_at_a_time(), side_by_side()
        slow_times.append(slow)
        fast_times.append(fast)
        ratios.append(slow / fast)
        print(f"| {round_} | {slow:.1f} | {fast:.1f} | {slow / fast:.1f}x |")
    slow, fast = statistics.median(slow_times), statistics.median(fast_times)
    print(f"| median | {slow:.1f} | {fast:.1f} | {statistics.median(ratios):.1f}x |")
