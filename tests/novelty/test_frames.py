"""FrameBatches: the child-process decoder hands over exactly what the thread decoder makes."""

from __future__ import annotations

import sys

import pytest

from capsight.errors import VideoOpenError
from capsight.io.synthetic_video import SyntheticVideoConfig, make_synthetic_video
from capsight.novelty.frames import BATCH, FrameBatches


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


@pytest.mark.parametrize("fork", [True, False], ids=["forked", "python -m"])
def test_child_process_and_thread_give_identical_frames(clip, monkeypatch, fork):
    import capsight.novelty.frames as frames

    monkeypatch.setattr(frames, "_can_fork", lambda: fork)
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


def test_no_thumbnails_when_not_asked(clip):
    batches, _ = _collect(clip, process=True, thumbnail_size=None)
    assert all(f.thumbnail is None for b in batches for f in b)


@pytest.mark.parametrize("process,fork", [(True, True), (True, False), (False, False)])
def test_a_corrupt_video_raises_the_same_error_either_way(tmp_path, clip, process, fork, monkeypatch):
    import capsight.novelty.frames as frames

    monkeypatch.setattr(frames, "_can_fork", lambda: fork)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(clip.read_bytes()[:48] + b"\x00" * 4000)
    with pytest.raises(VideoOpenError, match="broken.mp4"):
        _collect(broken, process=process)


@pytest.mark.parametrize("fork", [True, False], ids=["forked", "python -m"])
def test_closing_early_stops_the_child(clip, monkeypatch, fork):
    import capsight.novelty.frames as frames

    monkeypatch.setattr(frames, "_can_fork", lambda: fork)
    batches = FrameBatches(clip, 1.0, None, process=True)
    first = next(iter(batches))
    batches.close()
    assert len(first) == BATCH
    assert batches._child is not None and batches._child.returncode is not None


@pytest.mark.parametrize("fork", [True, False], ids=["forked", "python -m"])
def test_a_child_that_dies_reads_as_a_video_error(clip, monkeypatch, fork):
    import capsight.novelty.frames as frames

    monkeypatch.setattr(frames, "_can_fork", lambda: fork)
    batches = FrameBatches(clip, 1.0, None, process=True)
    batches._child.kill()
    with pytest.raises(VideoOpenError, match="stopped unexpectedly"):
        list(batches)
    batches.close()


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
    assert frames._can_fork() == sys.platform.startswith("linux")
    monkeypatch.setitem(sys.modules, "onnxruntime", object())  # its thread pools may run
    assert not frames._can_fork()
    monkeypatch.delitem(sys.modules, "onnxruntime")
    monkeypatch.setattr(frames.threading, "active_count", lambda: 2)  # say, matplotlib importing
    assert not frames._can_fork()


def test_a_finished_child_is_reaped_without_close(clip, monkeypatch):
    import capsight.novelty.frames as frames

    monkeypatch.setattr(frames, "_can_fork", lambda: True)
    batches = FrameBatches(clip, 1.0, None, process=True)
    assert sum(len(b) for b in batches) == 20
    assert batches._child.returncode == 0  # no zombie left for the caller to collect
    batches.close()
