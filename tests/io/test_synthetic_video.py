"""The synthetic test-video generator: deterministic plans, events kept apart from nuisances."""

from __future__ import annotations

import numpy as np
import pytest

from capsight.io.synthetic_video import (
    SyntheticVideoConfig,
    make_synthetic_video,
    render_synthetic_frames,
)
from capsight.io.video import probe_video


@pytest.fixture(scope="module")
def photos():
    data = pytest.importorskip("skimage.data")
    return [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()], [data.cat()]


SMALL = SyntheticVideoConfig(duration=40.0, width=96, height=54, fps=10, object_share=1.0)


def test_same_seed_same_video_and_other_seed_other_video(photos):
    scenes, objects = photos
    frames_a, a = render_synthetic_frames([0.0, 7.5, 20.0], scenes, objects, seed=3, config=SMALL)
    frames_b, b = render_synthetic_frames([0.0, 7.5, 20.0], scenes, objects, seed=3, config=SMALL)
    _, c = render_synthetic_frames([0.0], scenes, objects, seed=4, config=SMALL)
    assert a.events == b.events and a.nuisances == b.nuisances
    assert all(np.array_equal(x, y) for x, y in zip(frames_a, frames_b, strict=True))
    assert (c.events, c.nuisances) != (a.events, a.nuisances)
    assert frames_a[0].shape == (54, 96, 3) and frames_a[0].dtype == np.uint8


@pytest.mark.parametrize("seed", range(6))
def test_plans_keep_nuisances_away_from_events(photos, seed):
    scenes, objects = photos
    _, video = render_synthetic_frames([], scenes, objects, seed=seed, config=SMALL)
    kinds = {e.kind for e in video.events}
    assert kinds <= {"cut", "dissolve", "object"} and video.events
    for e in video.events:
        assert 0 < e.start <= e.end < SMALL.duration
        assert e.end - e.start == pytest.approx(
            {"cut": 0.0, "dissolve": 3.0}.get(e.kind, e.end - e.start)
        )
        for n in video.nuisances:
            assert n.end + SMALL.nuisance_gap <= e.start or n.start - SMALL.nuisance_gap >= e.end
    starts = [e.start for e in video.events]
    assert starts == sorted(starts)
    assert 1 <= len(video.nuisances) <= 5  # up to 5, as many as fit between the events


def test_writes_a_decodable_h264_file(photos, tmp_path):
    scenes, objects = photos
    config = SyntheticVideoConfig(duration=6.0, width=96, height=54, fps=10, nuisances=(1, 1))
    video = make_synthetic_video(tmp_path / "v.mp4", scenes, objects, seed=1, config=config)
    info = probe_video(video.path)
    assert (info.width, info.height) == (96, 54)
    assert info.duration == pytest.approx(6.0, abs=0.15)
