"""Fixtures for the server tests: apps on temp job folders, photos, bad files, a 3 s video.

- ``make_app(**settings)`` builds an app on this test's job folder around ``scripted_engine``;
  ``started(app)`` yields a TestClient once its models are ready; ``client`` is one started app
  shared by a test module; ``wait_for`` and ``wait_for_job`` poll (fixtures, so no test module
  imports this file by name).
- ``ScriptedEngine`` captions images with the real models but "analyses" videos with a script
  (real probe and decoding, scripted captions with a change half-way), so job tests are fast,
  corrupt data fails as in a real job, and a test can hold a job mid-run.
  ``real_engine_app`` uses the real novelty pipeline.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from capsight.server.app import create_app
from capsight.server.engine import Engine, VideoParams
from capsight.server.settings import ServerSettings


class ScriptedEngine(Engine):
    """Real image models; video analysis scripted from the real probe and decoding of the file."""

    def __init__(self, default_model: str = "labels") -> None:
        super().__init__(default_model)
        self.gate = threading.Event()  # analysis waits here; set() lets it finish
        self.gate.set()
        self.started = threading.Event()  # set once an analysis has begun
        self.calls: list[VideoParams] = []

    def _load(self) -> None:
        # The session's ``warm_models`` loaded the real models into the library's caches already;
        # a second warm-up per app would only cost time.
        self.load_seconds = 0.0
        self._ready.set()

    def analyze(self, path, params, progress):
        from capsight.io.video import probe_video, sample_frames
        from capsight.novelty.analysis import Analysis, AnalysisParams, Moment

        self.calls.append(params)
        info = probe_video(path)
        for _ in sample_frames(path, params.every):  # corrupt data fails here, as in a real job
            pass
        times = [float(t) for t in np.arange(0.0, info.duration, params.every)]
        self.started.set()
        moments = []
        for i, t in enumerate(times):
            progress(i / len(times), "captioning")
            deadline = time.monotonic() + 30
            while not self.gate.wait(timeout=0.05):  # held: keep reporting, as a real run does
                progress(i / len(times), "captioning")
                if time.monotonic() > deadline:
                    raise TimeoutError("test gate never opened")
            second_half = t >= info.duration / 2
            novel = second_half and not moments[-1].caption.endswith("coffee")
            moments.append(
                Moment(
                    time=float(t),
                    caption="a photo of a cup of coffee" if second_half else "a photo of a cat",
                    novelty=None if i == 0 else (0.9 if novel else 0.05),
                    is_novel=novel,
                    thumbnail=_jpeg(Image.new("RGB", (32, 24), (200, 120, 40))) if novel else None,
                )
            )
        p = AnalysisParams(every=params.every, window=params.window, metric=params.metric,
                           signal=params.signal, sensitivity=params.sensitivity,
                           captioner="scripted")  # fmt: skip
        return Analysis(info, p, moments)


def _jpeg(img: Image.Image, quality: int = 85) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _wait_for(predicate: Callable[[], object], timeout: float = 30.0, what: str = "condition"):
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _wait_for_job(client: TestClient, job_id: str, timeout: float = 60.0) -> dict:
    def finished():
        body = client.get(f"/v1/jobs/{job_id}").json()
        return body if body.get("status") in ("done", "failed", "interrupted") else None

    return _wait_for(finished, timeout, f"job {job_id}")


@pytest.fixture(scope="session")
def started():
    """``for c in started(app):`` runs the body with a started TestClient, models ready."""
    return _started


@pytest.fixture(scope="session")
def wait_for():
    """``wait_for(predicate, timeout=30, what=...)`` polls until the predicate is truthy."""
    return _wait_for


@pytest.fixture(scope="session")
def wait_for_job():
    """``wait_for_job(client, job_id)`` -> the job's JSON once it is done/failed/interrupted."""
    return _wait_for_job


@pytest.fixture(scope="session")
def warm_models() -> None:
    """Load the real encoder and default captioner once per session."""
    engine = Engine()
    engine.start_loading()
    assert engine.wait_ready(timeout=300)


@pytest.fixture
def scripted_engine(warm_models) -> ScriptedEngine:
    engine = ScriptedEngine()
    yield engine
    engine.gate.set()


@pytest.fixture
def make_app(tmp_path, scripted_engine):
    """``make_app(engine=None, **settings)``: an app on this test's job folder (UI off)."""

    def make(engine: Engine | None = None, **settings):
        settings.setdefault("job_dir", tmp_path / "jobs")
        settings.setdefault("ui", False)
        settings.setdefault("model", "labels")
        return create_app(ServerSettings(**settings), engine or scripted_engine)

    return make


def _started(app) -> Iterator[TestClient]:
    """A TestClient with the app's lifespan running and its models ready."""
    with TestClient(app) as c:
        _wait_for(lambda: c.get("/readyz").status_code == 200, what="readyz")
        yield c


@pytest.fixture(scope="module")
def client(warm_models, tmp_path_factory) -> Iterator[TestClient]:
    """One started app per test module (read-mostly tests share it)."""
    engine = ScriptedEngine("labels")
    # "labels" names ImageNet classes, so tests can check a cat photo's caption says "cat";
    # the trained default's wording is not something a test should pin.
    settings = ServerSettings(job_dir=tmp_path_factory.mktemp("jobs"), ui=False, model="labels")
    yield from _started(create_app(settings, engine))
    engine.gate.set()


# -- files ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def cat_jpeg() -> bytes:
    data = pytest.importorskip("skimage.data")
    img = Image.fromarray(data.chelsea())
    img.thumbnail((320, 320))
    return _jpeg(img)


@pytest.fixture(scope="session")
def coffee_png() -> bytes:
    data = pytest.importorskip("skimage.data")
    img = Image.fromarray(data.coffee())
    img.thumbnail((240, 240))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="session")
def bomb_png() -> bytes:
    """A 12000x12000 PNG (144 MP, over the 64 MP guard) that compresses to a few KB."""
    buf = io.BytesIO()
    Image.new("1", (12000, 12000)).save(buf, "PNG", optimize=True)
    return buf.getvalue()


@pytest.fixture(scope="session")
def truncated_video() -> bytes:
    """The bundled sample cut in half: it probes as a video, decoding fails part-way."""
    data = resources.files("capsight.data").joinpath("sample.mp4").read_bytes()
    return data[: len(data) // 2]


@pytest.fixture(scope="session")
def tiny_video(tmp_path_factory) -> Path:
    """3.2 s, 10 fps, 128x96 H.264: the cat for 1.6 s, then the coffee cup."""
    from capsight.io.synthetic_video import write_video

    data = pytest.importorskip("skimage.data")
    cat = np.asarray(Image.fromarray(data.chelsea()).resize((128, 96)))
    coffee = np.asarray(Image.fromarray(data.coffee()).resize((128, 96)))
    frames = [cat] * 16 + [coffee] * 16
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    write_video(path, frames, fps=10)
    return path
