"""Sandbox latency: ossa's warm sessions and pool against the gpt-oss reference's way.

The reference python tool (gpt_oss/tools/python_docker) makes a fresh container per call:
create `sleep infinity`, start, put_archive the script, exec `python`, remove. Here it runs on
ossa's image so both sides pay for the same root filesystem.

    python3 bench/sandbox.py [--calls 200] [--starts 5]
"""

from __future__ import annotations

import argparse
import io
import statistics
import tarfile
import time

import docker

from ossa.sandbox import DEFAULT_IMAGE, open_session
from ossa.sandbox.pool import WarmPool


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def ms(samples: list[float]) -> str:
    return f"p50 {1000 * statistics.median(samples):8.1f} ms  p95 {1000 * percentile(samples, 0.95):8.1f} ms"


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def warm_calls(runtime: str | None, calls: int) -> list[float]:
    with open_session(runtime=runtime) as session:
        session.run("1 + 1")
        return [timed(lambda: session.run("1 + 1")) for _ in range(calls)]


def cold_starts(runtime: str | None, starts: int) -> list[float]:
    def start_and_call() -> None:
        with open_session(runtime=runtime) as session:
            session.run("1 + 1")

    return [timed(start_and_call) for _ in range(starts)]


def pooled_starts(runtime: str | None, starts: int) -> list[float]:
    """Time to take a ready session and run one call; the pool refills between takes."""
    samples = []
    with WarmPool(size=1, runtime=runtime) as pool:
        pool.session().close()  # wait for the first fill
        for _ in range(starts):
            time.sleep(3)  # let the background start finish, as between agent turns
            started = time.perf_counter()
            session = pool.session()
            session.run("1 + 1")
            samples.append(time.perf_counter() - started)
            session.close()
    return samples


def reference_calls(calls: int) -> list[float]:
    """gpt-oss's docker backend, step for step, on the same image."""
    client = docker.from_env()
    script = b"print(1 + 1)\n"

    def one_call() -> None:
        container = client.containers.create(DEFAULT_IMAGE, "sleep infinity", user="root")
        container.start()
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w") as tar:
            info = tarfile.TarInfo("script.py")
            info.size = len(script)
            tar.addfile(info, io.BytesIO(script))
        container.put_archive("/tmp", archive.getvalue())
        container.exec_run("python3 /tmp/script.py")
        container.remove(force=True)

    return [timed(one_call) for _ in range(calls)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200, help="warm calls per runtime")
    parser.add_argument("--starts", type=int, default=5, help="session starts per way")
    args = parser.parse_args()
    runtimes: list[str | None] = [None]
    if "runsc" in docker.from_env().info().get("Runtimes", {}):
        runtimes.append("runsc")
    rows = []
    for runtime in runtimes:
        name = runtime or "runc"
        rows.append((f"ossa {name}: warm call (x{args.calls})", warm_calls(runtime, args.calls)))
        rows.append((f"ossa {name}: new session + call", cold_starts(runtime, args.starts)))
        rows.append((f"ossa {name}: pooled session + call", pooled_starts(runtime, args.starts)))
    rows.append(("reference: container per call", reference_calls(args.starts)))
    print(f"image {DEFAULT_IMAGE}")
    for label, samples in rows:
        print(f"{label:40s} {ms(samples)}")


if __name__ == "__main__":
    main()
