# multiprocessing.Pool(2) map and imap over 100,000 squares, the Python side of bench section 11.
# Run: python3 bench/python/imap.py
import multiprocessing as mp, time
def square(x): return x * x
if __name__ == "__main__":
    n = 100_000
    with mp.Pool(2) as pool:
        pool.map(square, range(1000))
        for label, f in [("map", lambda: pool.map(square, range(n))),
                         ("imap chunksize=1", lambda: list(pool.imap(square, range(n), chunksize=1))),
                         ("imap chunksize=256", lambda: list(pool.imap(square, range(n), chunksize=256))),
                         ("imap_unordered chunksize=256", lambda: list(pool.imap_unordered(square, range(n), chunksize=256)))]:
            best = min((lambda t0: (f(), time.perf_counter() - t0)[1])(time.perf_counter()) for _ in range(3))
            print(f"multiprocessing.Pool(2).{label} over {n} squares: {best*1e3:.1f} ms")
