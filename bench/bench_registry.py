"""Synthetic registry figures: seeding rate and lookup latency.

    .venv/bin/python bench/bench_registry.py [--persons 1000000] [--entities 100000]
        [--lookups 100000] [--seed 1] [--keep PATH]

Seeds a registry into a temporary directory (or --keep PATH), then times
random person, mobile-ownership and entity lookups through
SyntheticRegistry, one at a time on one thread, and prints the figures.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from common import spread

from verifiers.registry import generator
from verifiers.registry.synthetic import SyntheticRegistry, seed


def _latencies(calls: list[Callable[[], object]]) -> list[float]:
    timings = []
    clock = time.perf_counter_ns
    for call in calls:
        started = clock()
        call()
        timings.append((clock() - started) / 1000)
    return timings


def _report(name: str, timings: list[float]) -> None:
    s = spread(timings)
    # The mean includes the rare scheduler pause of a shared machine; p50/p99 do not.
    print(
        f"{name:<25} n={s.n:>7}  mean={s.mean:7.1f} µs"
        f"  p50={s.p50:7.1f} µs  p99={s.p99:7.1f} µs  max={s.max:9.1f} µs"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", type=Path, default=None, help="write the registry here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        path = args.keep or Path(scratch) / "registry.db"
        started = time.perf_counter()
        persons_done: list[float] = []

        def progress(done: int) -> None:
            if done == args.persons and not persons_done:
                persons_done.append(time.perf_counter() - started)

        seed(path, persons=args.persons, entities=args.entities, seed=args.seed, progress=progress)
        seconds = time.perf_counter() - started
        person_seconds = persons_done[0] if persons_done else seconds
        size_mb = path.stat().st_size / 1e6
        print(
            f"seeded {args.persons:,} persons + {args.entities:,} entities in {seconds:.1f} s "
            f"({size_mb:,.0f} MB); persons phase {person_seconds:.1f} s = "
            f"{args.persons / person_seconds:,.0f} persons/s; "
            f"entities + indexes {seconds - person_seconds:.1f} s"
        )

        rng = random.Random(args.seed)
        registry = SyntheticRegistry(path)
        person_codes = [
            generator.national_code(args.seed, rng.randrange(args.persons))
            for _ in range(args.lookups)
        ]
        # Codes past the seeded range: valid checksums, not in the registry.
        unknown = [generator.national_code(args.seed, args.persons + i) for i in range(1000)]
        registry.person(person_codes[0])  # open this thread's connection

        _report(
            "person (known)",
            _latencies([partial(registry.person, c) for c in person_codes]),
        )
        _report(
            "person (unknown)",
            _latencies([partial(registry.person, c) for c in unknown * 10]),
        )
        _report(
            "mobile owns",
            _latencies([partial(registry.owns, c, "09121234567") for c in person_codes]),
        )
        if args.entities:
            entity_ids = [
                generator.national_id(args.seed, rng.randrange(args.entities))
                for _ in range(min(args.lookups, 20_000))
            ]
            _report(
                "entity + representatives",
                _latencies([partial(registry.entity, i) for i in entity_ids]),
            )
        registry.close()


if __name__ == "__main__":
    main()
