"""``loaded_once``: cached loaders run one at a time across threads, each model built once."""

from __future__ import annotations

import os
import threading
import time

import pytest

from capsight.model_loading import loaded_once


def test_loads_never_overlap_and_each_model_is_built_once():
    running, most, calls = 0, 0, []
    guard = threading.Lock()

    @loaded_once(maxsize=4)
    def load(name: str) -> str:
        nonlocal running, most
        with guard:
            running += 1
            most = max(most, running)
            calls.append(name)
        time.sleep(0.05)  # long enough for the other threads to arrive meanwhile
        with guard:
            running -= 1
        return name.upper()

    names = ["a", "b", "a", "b", "a", "c"]
    results: list[str] = []
    threads = [threading.Thread(target=lambda n=n: results.append(load(n))) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most == 1
    assert sorted(calls) == ["a", "b", "c"]
    assert sorted(results) == sorted(n.upper() for n in names)
    load.cache_clear()
    assert load("a") == "A" and calls.count("a") == 2


def test_a_loader_may_use_another_inside_it():
    @loaded_once()
    def encoder(name: str) -> str:
        return f"encoder {name}"

    @loaded_once()
    def captioner(name: str) -> str:
        return f"{name} on {encoder('lite0')}"  # the lock is re-entrant: no deadlock

    assert captioner("pair") == "pair on encoder lite0"


def test_a_model_already_built_is_handed_out_while_another_loads():
    started, release = threading.Event(), threading.Event()

    @loaded_once()
    def load(name: str) -> str:
        if name == "slow":
            started.set()
            release.wait(10)
        return name

    assert load("ready") == "ready"
    slow = threading.Thread(target=load, args=("slow",))
    slow.start()
    assert started.wait(10)
    got = []
    reader = threading.Thread(target=lambda: got.append(load("ready")))
    reader.start()
    reader.join(2)  # with the lock held by the slow load, a cached read must not wait for it
    assert got == ["ready"]
    release.set()
    slow.join()


def test_the_oldest_result_goes_first_past_maxsize():
    calls = []

    @loaded_once(maxsize=2)
    def load(name: str) -> str:
        calls.append(name)
        return name

    for name in ("a", "b", "c", "b", "a"):
        load(name)
    assert calls == ["a", "b", "c", "a"]  # "a" was dropped for "c", "b" was still there


def test_loading_a_model_leaves_torchs_random_state_as_it_was():
    """Building a module draws its first weights; a user's seeded numbers must not depend on
    which models happened to be cached already."""
    import torch

    @loaded_once()
    def build(size: int) -> torch.nn.Module:
        return torch.nn.Linear(size, size)  # draws from the global generator

    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    build(64)
    assert torch.equal(torch.rand(3), expected)


def test_one_model_asked_for_in_different_words_is_built_once():
    """cached_encoder(name) and cached_encoder(name, reduced_precision=True) built the encoder
    twice: the cache was keyed by the arguments as written."""
    calls = []

    @loaded_once()
    def encoder(name: str = "lite0", weights: str = "", reduced: bool = True) -> tuple:
        calls.append((name, weights, reduced))
        return name, weights, reduced

    assert (
        encoder()
        is encoder("lite0")
        is encoder("lite0", reduced=True)
        is encoder("lite0", "", True)
    )
    assert encoder("lite0", reduced=False) == ("lite0", "", False)
    assert calls == [("lite0", "", True), ("lite0", "", False)]


@pytest.mark.slow
def test_a_first_caption_or_video_leaves_torchs_random_state_as_it_was(tmp_path):
    """In a fresh process (nothing cached): a checkpoint's modules, the encoders' folded
    copies and the first video's ONNX export had drawn from torch's global generator outside
    ``loaded_once``, so a user's seeded numbers changed after a first call."""
    import subprocess
    import sys
    from importlib.resources import files

    script = f"""
import numpy as np, torch, capsight
from PIL import Image
photo = Image.fromarray((np.random.default_rng(0).random((60, 80, 3)) * 255).astype("uint8"))
torch.manual_seed(0); expected = torch.randn(3).tolist()
for name, call in [
    ("labels", lambda: capsight.caption(photo, model="labels")),
    ("default", lambda: capsight.caption(photo)),
    ("video", lambda: capsight.analyze_video({str(files("capsight") / "data" / "sample.mp4")!r},
                                             every=5.0, thumbnail_size=0)),
]:
    torch.manual_seed(0)
    call()
    print(name, torch.randn(3).tolist() == expected)
"""
    env = {**os.environ, "CAPSIGHT_CACHE": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["labels", "True", "default", "True", "video", "True"]


def test_a_warning_begun_on_a_thread_of_capsights_points_into_capsight_not_threading(
    monkeypatch,
):
    """A warning from a server thread (all of its frames capsight's) had named threading.py."""
    import threading
    import warnings

    import capsight.warning_origin as origin

    monkeypatch.setattr(origin, "_PACKAGE", os.path.dirname(os.path.abspath(__file__)) + os.sep)

    def warn() -> None:  # capsight's own code on its own thread (this folder stands for it)
        warnings.warn("x", UserWarning, stacklevel=origin.callers_level())

    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        thread = threading.Thread(target=warn)
        thread.start()
        thread.join()
    assert said and "threading" not in said[0].filename
