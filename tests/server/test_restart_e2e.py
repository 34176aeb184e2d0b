"""Kill -9 a real `capsight serve` during a video job, start it again: nothing is lost.

The finished job and its files are still there, the job that was running says it was
interrupted, and the restarted server takes new work.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def _post_video(url: str, path: Path, every: float) -> dict:
    boundary = "capsightboundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="every"\r\n\r\n{every}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="video"; filename="{path.name}"'
            "\r\nContent-Type: video/mp4\r\n\r\n"
        ).encode()
        + path.read_bytes()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        url + "/v1/videos",
        data=body,
        method="POST",
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    with urllib.request.urlopen(request, timeout=60) as r:
        assert r.status == 202
        return json.loads(r.read())


def _serve(job_dir: Path, port: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "CAPSIGHT_JOB_DIR": str(job_dir), "CAPSIGHT_PORT": str(port),
           "CAPSIGHT_MODEL": "labels"}  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "capsight", "serve", "--no-ui"], env=env,
                            stdout=open(log, "a"), stderr=subprocess.STDOUT)  # fmt: skip
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        try:
            if _get(f"http://127.0.0.1:{port}/readyz")["status"] == "ready":
                return proc
        except OSError:
            pass
        assert proc.poll() is None, log.read_text()[-3000:]
        time.sleep(0.3)
    proc.kill()
    raise AssertionError("server not ready: " + log.read_text()[-3000:])


def _wait(url: str, job_id: str, predicate, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = _get(f"{url}/v1/jobs/{job_id}?analysis=false")
        if predicate(job):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} never reached the expected state: {job}")


def test_kill_during_a_job_and_restart(tmp_path):
    from capsight.io.synthetic_video import write_video

    rng = np.random.default_rng(0)
    scenes = [np.full((48, 64, 3), c, np.uint8) for c in (40, 200)]
    short, long = tmp_path / "short.mp4", tmp_path / "long.mp4"
    write_video(short, [scenes[0]] * 10 + [scenes[1]] * 10, fps=10)
    frames = [np.clip(scenes[i // 100 % 2] + rng.integers(0, 8, (48, 64, 3)), 0, 255)
              .astype(np.uint8) for i in range(600)]  # fmt: skip
    write_video(long, frames, fps=10)  # 60 s: long enough to be caught running

    port, job_dir, log = _free_port(), tmp_path / "jobs", tmp_path / "server.log"
    url = f"http://127.0.0.1:{port}"
    proc = _serve(job_dir, port, log)
    try:
        done_id = _post_video(url, short, every=0.5)["id"]
        _wait(url, done_id, lambda j: j["status"] == "done")
        report = urllib.request.urlopen(f"{url}/v1/jobs/{done_id}/report").read()
        running_id = _post_video(url, long, every=0.25)["id"]
        _wait(url, running_id, lambda j: j["status"] == "running" and j["progress"] > 0)
    finally:
        proc.send_signal(signal.SIGKILL)  # no shutdown handler runs
        proc.wait(timeout=30)

    proc = _serve(job_dir, port, log)
    try:
        assert _get(f"{url}/v1/jobs/{done_id}")["status"] == "done"
        assert urllib.request.urlopen(f"{url}/v1/jobs/{done_id}/report").read() == report
        interrupted = _get(f"{url}/v1/jobs/{running_id}")
        assert interrupted["status"] == "interrupted"
        assert "server stopped" in interrupted["error"]
        again = _post_video(url, short, every=0.5)["id"]
        assert _wait(url, again, lambda j: j["status"] in ("done", "failed"))["status"] == "done"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    # capsight's own lines in uvicorn's form, info ones too (they had been bare, and info lost)
    lines = log.read_text().splitlines()
    assert f"WARNING:  job {running_id} was interrupted by a server restart" in lines
    assert any(line.startswith(f"INFO:     job {again} done: ") for line in lines), lines[-20:]
