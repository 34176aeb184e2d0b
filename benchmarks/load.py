"""Load test of `capsight serve`: concurrent clients captioning photos (and submitting videos).

    $ python benchmarks/load.py --start-server                       # the default scenarios
    $ python benchmarks/load.py --url http://127.0.0.1:8000 --scenarios 16x60
    $ python benchmarks/load.py --start-server --scenarios 1x30 16x60 --video-every 10

Each scenario ``CxS`` runs C clients for S seconds; every client posts one photo to
``POST /v1/captions``, waits for the answer, and posts the next (closed loop, so throughput is
what the server sustains). With ``--video-every N`` one extra client submits a 4 s video to
``POST /v1/videos`` every N seconds, and follows it to the end; a ``503`` (queue full, with
Retry-After) is counted as back-pressure, not as an error. Prints a markdown table: requests,
throughput, latency p50/p95/p99/max, errors. ``--start-server`` runs ``capsight serve`` on a free
port with a temporary job folder, and then also reports the server's CPU time per request (user
+ system, all threads), which does not depend on what else the machine is running: on an idle
machine a request's latency is about that figure divided by the threads that share it.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
from PIL import Image


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)  # seconds, successful requests
    errors: dict[str, int] = field(default_factory=dict)  # "status: message" -> count
    videos_done: int = 0
    videos_rejected: int = 0  # 503 queue full (back-pressure)

    def error(self, key: str) -> None:
        self.errors[key] = self.errors.get(key, 0) + 1


def photos(size: int = 640) -> list[bytes]:
    """JPEGs of scikit-image's sample photos (or synthetic gradients when it is missing)."""
    arrays = []
    try:
        from skimage import data

        arrays = [data.chelsea(), data.coffee(), data.astronaut(), data.rocket()]
    except ImportError:
        rng = np.random.default_rng(0)
        arrays = [(rng.random((480, 640, 3)) * 255).astype(np.uint8) for _ in range(4)]
    out = []
    for arr in arrays:
        img = Image.fromarray(arr).convert("RGB")
        img.thumbnail((size, size))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=88)
        out.append(buf.getvalue())
    return out


def test_video(path: Path) -> Path:
    """A 4 s clip with one hard cut (cat, then coffee) at 192x128."""
    from capsight.io.synthetic_video import write_video

    from_photos = photos(256)
    a, b = (np.asarray(Image.open(io.BytesIO(p)).resize((192, 128))) for p in from_photos[:2])
    write_video(path, [a] * 20 + [b] * 20, fps=10)
    return path


async def photo_client(client: httpx.AsyncClient, images: list[bytes], until: float, tally: Tally,
                       offset: int) -> None:  # fmt: skip
    i = offset
    while time.monotonic() < until:
        data = images[i % len(images)]
        i += 1
        start = time.perf_counter()
        try:
            r = await client.post(
                "/v1/captions", files={"images": ("photo.jpg", data, "image/jpeg")}
            )
        except httpx.HTTPError as exc:
            tally.error(f"transport: {type(exc).__name__}")
            continue
        elapsed = time.perf_counter() - start
        if r.status_code == 200:
            tally.latencies.append(elapsed)
        else:
            tally.error(f"{r.status_code}: {r.text[:80]}")


async def video_client(client: httpx.AsyncClient, video: bytes, every: float, until: float,
                       tally: Tally) -> None:  # fmt: skip
    pending: list[str] = []
    next_submit = time.monotonic()
    while time.monotonic() < until or pending:
        now = time.monotonic()
        if now >= next_submit and now < until:
            next_submit = now + every
            r = await client.post("/v1/videos", data={"every": "0.5"},
                                  files={"video": ("clip.mp4", video, "video/mp4")})  # fmt: skip
            if r.status_code == 202:
                pending.append(r.json()["id"])
            elif r.status_code == 503:
                tally.videos_rejected += 1
            else:
                tally.error(f"video {r.status_code}: {r.text[:80]}")
        for job_id in list(pending):
            r = await client.get(f"/v1/jobs/{job_id}", params={"analysis": "false"})
            status = r.json().get("status")
            if status == "done":
                tally.videos_done += 1
                pending.remove(job_id)
            elif status in ("failed", "interrupted"):
                tally.error(f"video job {status}: {r.json().get('error')}")
                pending.remove(job_id)
        if time.monotonic() > until + 300:
            tally.error("video jobs still running 300 s after the end")
            return
        await asyncio.sleep(0.5)


async def run_scenario(url: str, clients: int, seconds: float, images: list[bytes],
                       video: bytes | None, video_every: float, api_key: str | None) -> Tally:  # fmt: skip
    tally = Tally()
    headers = {"X-API-Key": api_key} if api_key else {}
    limits = httpx.Limits(max_connections=clients + 4, max_keepalive_connections=clients + 4)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits, headers=headers) as c:
        # One warm-up request so the first timing is not a cold cache.
        await c.post("/v1/captions", files={"images": ("p.jpg", images[0], "image/jpeg")})
        until = time.monotonic() + seconds
        tasks = [photo_client(c, images, until, tally, k) for k in range(clients)]
        if video is not None and video_every > 0:
            tasks.append(video_client(c, video, video_every, until, tally))
        await asyncio.gather(*tasks)
    return tally


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time of a local process (Linux /proc), None when unknown."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return float(np.percentile(np.asarray(values), q))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(job_dir: str) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = {**os.environ, "CAPSIGHT_JOB_DIR": job_dir, "CAPSIGHT_PORT": str(port)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "capsight", "serve", "--no-ui", "--log-level", "warning"],
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=2) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.5)
        if proc.poll() is not None:
            break
    proc.terminate()
    raise SystemExit("the server did not become ready")


def scenario_arg(text: str) -> tuple[int, float]:
    """ "16x60" -> (16 clients, 60 seconds); argparse's one-line error otherwise."""
    try:
        clients, seconds = text.lower().split("x")
        parsed = int(clients), float(seconds)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give CLIENTSxSECONDS, e.g. 16x60") from None
    if parsed[0] < 1 or not parsed[1] > 0:
        raise argparse.ArgumentTypeError(f"{text!r}: at least 1 client for more than 0 seconds")
    return parsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", help="a running server (or --start-server)")
    parser.add_argument("--start-server", action="store_true", help="run capsight serve here")
    parser.add_argument("--scenarios", nargs="+", default=[(1, 30.0), (16, 60.0)], type=scenario_arg,
                        help="CLIENTSxSECONDS, e.g. 1x30 16x60 (default)")  # fmt: skip
    parser.add_argument("--video-every", type=float, default=0.0,
                        help="also submit a 4 s video every N seconds (0: no videos)")  # fmt: skip
    parser.add_argument("--api-key", default=os.environ.get("CAPSIGHT_API_KEY"))
    args = parser.parse_args()
    if not args.url and not args.start_server:
        parser.error("give --url of a running server, or --start-server")

    images = photos()
    proc = None
    with tempfile.TemporaryDirectory() as tmp:
        video = test_video(Path(tmp) / "clip.mp4").read_bytes() if args.video_every else None
        url = args.url
        if args.start_server:
            proc, url = start_server(str(Path(tmp) / "jobs"))
        try:
            rows = []
            for clients, seconds in args.scenarios:
                t0 = time.monotonic()
                cpu0 = cpu_seconds(proc.pid if proc else None)
                try:
                    tally = asyncio.run(run_scenario(url, clients, seconds, images, video,
                                                     args.video_every, args.api_key))  # fmt: skip
                except httpx.ConnectError as exc:  # (a traceback before: no server at --url)
                    sys.exit(f"{url}: cannot connect ({exc}); is `capsight serve` running there?")
                wall = time.monotonic() - t0
                cpu1 = cpu_seconds(proc.pid if proc else None)
                lat = [x * 1000 for x in tally.latencies]
                served = len(lat) + 1  # + the warm-up request
                cpu_ms = (cpu1 - cpu0) * 1000 / served if cpu0 is not None and not video else None
                rows.append(
                    (
                        f"{int(clients)} x {seconds:g} s",
                        len(lat),
                        len(lat) / seconds,
                        percentile(lat, 50),
                        percentile(lat, 95),
                        percentile(lat, 99),
                        max(lat) if lat else float("nan"),
                        sum(tally.errors.values()),
                        f"{tally.videos_done} done, {tally.videos_rejected} x 503"
                        if video is not None
                        else "-",
                        "-" if cpu_ms is None else f"{cpu_ms:.0f}",
                    )
                )
                for key, n in tally.errors.items():
                    print(f"  error x{n}: {key}", file=sys.stderr)
                print(f"  ({clients}x{seconds:g}: {wall:.0f} s wall)", file=sys.stderr)
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=30)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\ncapsight serve, photo captioning ({len(images)} photos, <=640 px JPEG), "
          f"{os.cpu_count()} CPUs, load average at the end {load:.1f}\n")  # fmt: skip
    print(
        "| clients x duration | requests | throughput (req/s) | p50 ms | p95 ms | p99 ms "
        "| max ms | errors | videos | server CPU ms/request |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|---:|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]:.2f} | {r[3]:.0f} | {r[4]:.0f} | {r[5]:.0f} | "
              f"{r[6]:.0f} | {r[7]} | {r[8]} | {r[9]} |")  # fmt: skip


if __name__ == "__main__":
    main()
