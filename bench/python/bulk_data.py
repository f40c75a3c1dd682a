"""Python's figure for section 9 of the benchmark (bulk data): `multiprocessing.Pool(2).map(len,
items)` over 400 bytes objects of 1 MiB and 10,000 of 16 KiB, the items skprocess's pool maps
`|v: Vec<u8>| v.len()` over. Needs nothing but the standard library.

Run: `python3 bench/python/bulk_data.py` (`--quick` for a smoke run with tiny counts).
"""

import multiprocessing
import statistics
import sys
import time


def items(size, count):
    return [bytes([i % 251]) * size for i in range(count)]


def main():
    quick = "--quick" in sys.argv
    rounds = 1 if quick else 5
    with multiprocessing.Pool(2) as pool:
        pool.map(len, items(1 << 20, 8))  # warm: both workers have run
        for size, count in [(1 << 20, 40 if quick else 400), (16 << 10, 1000 if quick else 10_000)]:
            times = []
            for _ in range(rounds):
                batch = items(size, count)
                started = time.perf_counter()
                lengths = pool.map(len, batch)
                times.append(time.perf_counter() - started)
                assert lengths == [size] * count
            took = statistics.median(times)
            print(
                f"multiprocessing.Pool(2).map(len) over {count} bytes of {size >> 10} KiB: "
                f"{took * 1e3:.1f} ms, {took / count * 1e6:.2f} us per item, "
                f"{count * size / took / (1 << 30):.2f} GiB/s"
            )


if __name__ == "__main__":
    main()
