"""FrameBatches: the child-process decoder hands over exactly what the thread decoder makes."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from capsight.errors import VideoOpenError
from capsight.io.synthetic_video import SyntheticVideoConfig, make_synthetic_video
from capsight.novelty.frames import BATCH, FrameBatches
from capsight.novelty.frames import _can_fork as can_fork  # before conftest turns it off


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """20 s, 160x90, 10 fps: more than one batch of moments at one per second."""
    data = pytest.importorskip("skimage.data")
    config = SyntheticVideoConfig(duration=20.0, width=160, height=90, fps=10, nuisances=(0, 0))
    path = tmp_path_factory.mktemp("frames") / "clip.mp4"
    make_synthetic_video(path, [data.coffee(), data.astronaut(), data.chelsea()], seed=2,
                         config=config)  # fmt: skip
    return path


def _collect(path, process: bool, thumbnail_size: int | None = 64):
    with FrameBatches(path, 1.0, thumbnail_size, process=process) as batches:
        out = list(batches)
        return out, batches.seconds


def _forked(scenario: str, clip) -> dict:
    """Run a scenario of forked_decoder.py in a fresh interpreter, where a fork is safe (see
    its docstring); a hang fails the test in a minute instead of stalling the suite."""
    script = Path(__file__).with_name("forked_decoder.py")
    done = subprocess.run([sys.executable, str(script), scenario, str(clip)],
                          capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    result = json.loads(done.stdout.splitlines()[-1])
    assert result.pop("can_fork") == sys.platform.startswith("linux")
    return result


def test_child_process_and_thread_give_identical_frames(clip):
    by_child, child_seconds = _collect(clip, process=True)
    by_thread, _ = _collect(clip, process=False)
    assert [len(b) for b in by_child] == [BATCH, 20 - BATCH]
    child = [f for b in by_child for f in b]
    thread = [f for b in by_thread for f in b]
    assert [f.time for f in child] == [f.time for f in thread] == [float(t) for t in range(20)]
    assert all(a.image.tobytes() == b.image.tobytes() for a, b in zip(child, thread, strict=True))
    assert all(a.thumbnail == b.thumbnail and a.thumbnail[:2] == b"\xff\xd8"
               for a, b in zip(child, thread, strict=True))  # fmt: skip
    assert child_seconds > 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the decoder forks on Linux only")
def test_a_forked_child_gives_the_thread_decoders_frames(clip):
    forked = _forked("frames_and_seconds", clip)
    by_thread, _ = _collect(clip, process=False)
    digest = hashlib.sha256()
    for f in (f for b in by_thread for f in b):
        digest.update(f.image.tobytes())
        digest.update(f.thumbnail or b"-")
    assert forked["forked"] and forked["seconds"] > 0
    assert forked["sizes"] == [len(b) for b in by_thread] == [BATCH, 20 - BATCH]
    assert forked["times"] == [f.time for b in by_thread for f in b]
    assert forked["sha256"] == digest.hexdigest()


def test_no_thumbnails_when_not_asked(clip):
    batches, _ = _collect(clip, process=True, thumbnail_size=None)
    assert all(f.thumbnail is None for b in batches for f in b)


@pytest.mark.parametrize("process", [True, False], ids=["python -m", "thread"])
def test_a_corrupt_video_raises_the_same_error_either_way(tmp_path, clip, process):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(clip.read_bytes()[:48] + b"\x00" * 4000)
    with pytest.raises(VideoOpenError, match="broken.mp4"):
        _collect(broken, process=process)
    if sys.platform.startswith("linux"):
        forked = _forked("corrupt", clip)
        assert forked["error"] == "VideoOpenError" and "broken.mp4" in forked["message"]


def test_closing_early_stops_the_child(clip):
    batches = FrameBatches(clip, 1.0, None, process=True)
    first = next(iter(batches))
    batches.close()
    assert len(first) == BATCH
    assert batches._child is not None and batches._child.returncode is not None
    if sys.platform.startswith("linux"):
        forked = _forked("close_early", clip)
        assert forked["first"] == BATCH and forked["returncode"] is not None


def test_a_child_that_dies_reads_as_a_video_error(clip):
    batches = FrameBatches(clip, 1.0, None, process=True)
    batches._child.kill()
    with pytest.raises(VideoOpenError, match="stopped unexpectedly"):
        list(batches)
    batches.close()
    if sys.platform.startswith("linux"):
        assert "stopped unexpectedly" in _forked("child_dies", clip)["message"]


def test_a_child_decodes_only_while_torch_is_not_imported(clip, monkeypatch):
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    with FrameBatches(clip, 1.0, None) as cold:
        assert cold._child is not None
    monkeypatch.setitem(sys.modules, "torch", object())
    with FrameBatches(clip, 1.0, None) as warm:
        assert warm._child is None and len(list(warm)) == 2


def test_the_decoder_is_forked_only_from_a_one_thread_process(monkeypatch):
    import capsight.novelty.frames as frames

    for name in ("torch", "onnxruntime"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setattr(frames.threading, "active_count", lambda: 1)
    assert can_fork() == sys.platform.startswith("linux")
    monkeypatch.setitem(sys.modules, "onnxruntime", object())  # its thread pools may run
    assert not can_fork()
    monkeypatch.delitem(sys.modules, "onnxruntime")
    monkeypatch.setattr(frames.threading, "active_count", lambda: 2)  # say, matplotlib importing
    assert not can_fork()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the decoder forks on Linux only")
def test_a_finished_child_is_reaped_without_close(clip):
    forked = _forked("reaped_without_close", clip)
    assert forked == {"count": 20, "returncode": 0}  # no zombie left for the caller to collect


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the decoder forks on Linux only")
def test_a_fork_stuck_before_its_first_frame_is_replaced(clip):
    assert _forked("stuck_fork", clip) == {"count": 20, "replaced": True, "fork_reaped": True}


def test_a_module_in_the_working_directory_does_not_replace_the_childs(clip, tmp_path, monkeypatch):
    (tmp_path / "queue.py").write_text("raise SystemExit('the working directory came first')\n")
    monkeypatch.chdir(tmp_path)
    batches, _ = _collect(clip, process=True, thumbnail_size=None)
    assert sum(len(b) for b in batches) == 20


def test_sharpness_falls_with_blur_not_with_lighting_and_a_flat_frame_has_none(photo):
    import math

    import numpy as np
    from PIL import Image, ImageFilter

    from capsight.novelty.frames import normalise_exposure, sharpness

    cat = photo("chelsea")
    sharp = sharpness(normalise_exposure(cat))
    assert sharpness(normalise_exposure(cat.filter(ImageFilter.GaussianBlur(3)))) < 0.5 * sharp
    darker = Image.eval(cat, lambda v: v // 2)
    assert sharpness(normalise_exposure(darker)) == pytest.approx(sharp, rel=0.05)
    assert math.isnan(sharpness(normalise_exposure(Image.new("RGB", (64, 48), (9, 9, 9)))))
    # A strip a few pixels thin, with detail: not flat, so not "a blank frame" (every moment of
    # a 4000x16 video had been one).
    noise = np.random.default_rng(0).integers(0, 255, (2, 384, 3), dtype=np.uint8)
    for strip in (noise, noise.transpose(1, 0, 2), noise[:, :2]):
        value = sharpness(Image.fromarray(np.ascontiguousarray(strip)))
        assert not math.isnan(value) and value >= 0
