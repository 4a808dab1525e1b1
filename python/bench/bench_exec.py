"""What the Python layer costs: exec round trips through the SDK, blocking and async.

Run against an installed wheel (a release build for numbers worth quoting):
    python python/bench/bench_exec.py [--rounds 300]
Prints median and p99 per call, and the throughput of 20 AsyncSessions at once. Compare
with the Rust session bench (`cargo bench -p execkit-runner --bench session`), which times
the same round trip without Python.
"""

import argparse
import asyncio
import statistics
import tempfile
import time

import execkit


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def blocking(ws, rounds):
    out = {}
    with execkit.Session.local(ws) as s:
        s.exec("head -c 1048576 /dev/zero | tr '\\0' a > one-mib.txt")
        calls = [
            ("exec true", lambda: s.exec("true")),
            ("exec echo", lambda: s.exec("echo hello")),
            ("cat 1 MiB", lambda: s.exec("cat one-mib.txt")),
            # Where a round trip goes: the native call without the Python facade, and the
            # decision alone (remembered after the first time).
            ("native true", lambda: s._s.exec("true", None)),
            ("decide true", lambda: s.decide("true")),
        ]
        for name, call in calls:
            for _ in range(20):
                call()
            times = []
            for _ in range(rounds):
                t = time.perf_counter()
                call()
                times.append((time.perf_counter() - t) * 1000)
            out[name] = (statistics.median(times), percentile(times, 99))
    return out


async def concurrent(ws, sessions, per_session):
    async def one(i):
        async with execkit.AsyncSession.local(ws) as s:
            for _ in range(per_session):
                await s.exec("echo x")

    t = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(sessions)))
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=300)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as ws:
        for name, (p50, p99) in blocking(ws, a.rounds).items():
            print(f"{name:<12} p50 {p50:7.3f} ms   p99 {p99:7.3f} ms   ({a.rounds} rounds)")
        sessions, per = 20, 25
        secs = asyncio.run(concurrent(ws, sessions, per))
        n = sessions * per
        print(f"{sessions} AsyncSessions x {per} execs: {secs:.2f} s including opening and closing, {n / secs:.0f} commands/s")


if __name__ == "__main__":
    main()
