"""analyze_video end to end on a short generated clip, and its checks before any work."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from capsight.errors import InputNotFound, InvalidParameter, ModelNotFound, VideoOpenError
from capsight.io.synthetic_video import SyntheticVideoConfig, make_synthetic_video
from capsight.novelty.frames import normalise_exposure
from capsight.novelty.pipeline import analyze_video, video_captioner_name


def cuts_only(duration: float, fps: int, shot: float) -> SyntheticVideoConfig:
    """A small clip of ``shot``-second shots joined by hard cuts, nothing else happening."""
    return SyntheticVideoConfig(
        duration=duration,
        width=192,
        height=108,
        fps=fps,
        shot_seconds=(shot, shot),
        dissolve_share=0.0,
        object_share=0.0,
        nuisances=(0, 0),
    )


@pytest.fixture(scope="module")
def one_cut_clip(tmp_path_factory):
    """8 s, 192x108: a slow pan over the coffee photo, a hard cut at 4 s to the astronaut."""
    data = pytest.importorskip("skimage.data")
    config = cuts_only(duration=8.0, fps=10, shot=4.0)
    path = tmp_path_factory.mktemp("clip") / "one_cut.mp4"
    video = make_synthetic_video(path, [data.coffee(), data.astronaut()], seed=1, config=config)
    assert [(e.kind, e.start) for e in video.events] == [("cut", 4.0)]
    return path


@pytest.mark.slow
def test_finds_the_one_cut_and_fills_every_moment(one_cut_clip):
    progress: list[float] = []
    messages: list[str] = []
    analysis = analyze_video(
        one_cut_clip, progress=lambda f, msg: (progress.append(f), messages.append(msg))
    )
    assert [m.time for m in analysis.novel_moments] == [4.0]
    moments = analysis.moments
    assert [m.time for m in moments] == [0, 1, 2, 3, 4, 5, 6, 7]
    assert moments[0].novelty is None and all(m.novelty is not None for m in moments[1:])
    assert max(moments[1:], key=lambda m: m.novelty_visual).time == 4.0
    assert all(m.caption and len(m.labels) == 3 for m in moments)
    assert moments[4].thumbnail[:2] == b"\xff\xd8"  # a JPEG
    assert progress[0] == 0.0 and progress[-1] == 1.0 and progress == sorted(progress)
    assert "captioned up to 00:07" in messages  # how far into the video, as a clock
    # the selection says it is at work (an hour's took ~10 s with the bar standing at 99%)
    assert messages.index("picking the novel moments of 8") > messages.index(
        "captioned up to 00:07"
    )
    # once the models are in, the wait for the first batch says so (a server's are warm)
    assert messages.index("loading models") < messages.index("captioning the first frames")
    assert analysis.video.width == 192 and analysis.params.signal == "fused"
    assert {"decode_s", "encode_s", "total_s"} <= set(analysis.extra["timings"])
    assert analysis.extra["decoding"] == "default"
    data = analysis.to_dict()
    assert data["novel_moments"][0]["time"] == 4.0 and data["moments"][0]["novelty"] is None


def test_a_stop_between_a_batchs_appends_keeps_the_moments_every_list_holds():
    from capsight.novelty.pipeline import _Collected

    got = _Collected(times=[0.0, 1.0, 2.0], captions=["a", "b", "c"], labels=[[], []],
                     thumbs=[None] * 3, sharp=[1.0] * 3, pooled=[np.zeros((3, 4))],
                     regions=[np.zeros((2, 9, 4)), np.zeros((1, 9, 4))],
                     text_vectors=[np.zeros((3, 2))])  # fmt: skip
    assert got.keep_whole_moments() == 2
    assert got.times == [0.0, 1.0] and got.captions == ["a", "b"] and len(got.thumbs) == 2
    assert [p.shape for p in (*got.pooled, *got.regions, *got.text_vectors)] == [
        (2, 4),
        (2, 9, 4),
        (2, 2),
    ]


def test_ctrl_c_part_way_keeps_the_moments_analysed_so_far(one_cut_clip):
    """An hour's video stopped at 0:40 had kept nothing of its 40 minutes."""
    from capsight.novelty.analysis import StoppedPartWay

    def stop_after_the_first_batch(fraction, message):
        if message.startswith("captioned up to"):
            raise KeyboardInterrupt

    with pytest.raises(StoppedPartWay) as stopped:  # (a KeyboardInterrupt still)
        analyze_video(one_cut_clip, every=0.2, progress=stop_after_the_first_batch)
    part = stopped.value.analysis
    assert [m.time for m in part.moments] == pytest.approx([0.2 * n for n in range(16)])
    assert part.extra["stopped_at"] == pytest.approx(3.0) and part.video.duration == 8.0
    assert part.moments[0].novelty is None and all(m.novelty is not None for m in part.moments[1:])
    assert "stopped part-way: only the moments up to 3.0 s" in part.cut_short()

    def stop_while_loading(fraction, message):
        if message == "captioning the first frames":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt) as plain:  # nothing captioned: nothing to keep
        analyze_video(one_cut_clip, progress=stop_while_loading)
    assert type(plain.value) is KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt) as plain:  # a batch keeps no partial reports
        analyze_video(one_cut_clip, every=0.2, progress=stop_after_the_first_batch, partial=False)
    assert not hasattr(plain.value, "analysis")
    import pickle

    assert len(pickle.loads(pickle.dumps(stopped.value)).analysis.moments) == 16  # (a worker's)

    class Terminated(KeyboardInterrupt):  # the CLI's SIGTERM: raised as its own kind
        pass

    def terminated(fraction, message):
        if message.startswith("captioned up to"):
            raise Terminated

    with pytest.raises(Terminated) as kept:
        analyze_video(one_cut_clip, every=0.2, progress=terminated)
    assert len(kept.value.analysis.moments) == 16


def test_greedy_captions_are_recorded_and_find_the_same_cut(one_cut_clip):
    analysis = analyze_video(one_cut_clip, greedy=True)
    assert analysis.extra["decoding"] == "greedy"
    # "default" is recorded as the captioner it stood for
    assert (
        analysis.params.captioner == analysis.extra["captioner"] == video_captioner_name("default")
    )
    assert [m.time for m in analysis.novel_moments] == [4.0]
    assert all(m.caption for m in analysis.moments)


@pytest.mark.slow
@pytest.mark.parametrize("signal", ["visual", "Text"])
def test_the_chosen_signal_is_the_reported_novelty(one_cut_clip, signal):
    analysis = analyze_video(one_cut_clip, signal=signal, captioner="labels", window=2, greedy=True)
    signal = signal.lower()  # as the metric, the signal's case does not matter
    assert analysis.params.signal == signal and analysis.params.window == 2
    assert analysis.extra["decoding"] == "none"  # labels decodes nothing, greedy or not
    for m in analysis.moments[1:]:
        assert m.novelty == getattr(m, f"novelty_{signal}")
    if signal == "visual":
        assert [m.time for m in analysis.novel_moments] == [4.0]


@pytest.mark.parametrize(
    "options",
    [
        {"every": 0},
        {"every": -1.0},
        {"every": "often"},
        {"window": 0},
        {"metric": "manhattan"},
        {"signal": "audio"},
        {"sensitivity": 1.5},
    ],
)
def test_bad_options_fail_before_the_file_is_read(options, tmp_path):
    with pytest.raises(InvalidParameter):
        analyze_video(tmp_path / "missing.mp4", **options)


@pytest.mark.parametrize(
    "call",
    [
        {"path": None},
        {"path": ["a.mp4", "b.mp4"]},
        {"path": b"clip.mp4"},
        {"captioner": None},
        {"greedy": "no"},
        {"partial": "no"},  # had been taken as True
        {"thumbnail_size": "x"},
        {"thumbnail_size": 64.5},
        {"progress": 5},
    ],
)
def test_python_callers_get_one_line_for_a_wrong_type(call, tmp_path):
    """What the CLI's parser refuses comes as InvalidParameter from Python too, not as a
    TypeError from deep inside (or, for greedy="no", a silent greedy run)."""
    call = {"path": tmp_path / "missing.mp4", **call}
    with pytest.raises(InvalidParameter, match="must be"):
        analyze_video(call.pop("path"), **call)


@pytest.mark.parametrize(
    ("call", "start"),
    [
        ({"every": 0}, "every must be"),
        ({"window": 0}, "window must be"),
        ({"sensitivity": 2}, "sensitivity must be"),
        # True ran at 1 s and meant sensitivity 1.0; 10**400 was an OverflowError
        ({"every": True}, "every must be"),
        ({"every": 10**400}, "every must be"),
        ({"every": "1"}, "every must be"),
        ({"sensitivity": True}, "sensitivity must be"),
        ({"sensitivity": 10**400}, "sensitivity must be"),
    ],
)
def test_python_callers_read_their_own_argument_names(call, start, tmp_path):
    """A Python caller passed ``every=``, not ``--every``; the CLI writes its flags itself
    (``tests/cli/test_video.py``)."""
    with pytest.raises(InvalidParameter) as caught:
        analyze_video(tmp_path / "missing.mp4", **call)
    assert str(caught.value).startswith(start) and caught.value.parameter == next(iter(call))


def test_a_checkpoint_folder_may_be_given_as_a_path(one_cut_clip, tmp_path):
    # named, not refused for its type
    with pytest.raises(ModelNotFound, match="no-such-checkpoint"):
        analyze_video(one_cut_clip, captioner=tmp_path / "no-such-checkpoint")


def test_bad_files_fail_before_models_load(tmp_path):
    with pytest.raises(InputNotFound):
        analyze_video(tmp_path / "missing.mp4")
    (tmp_path / "notes.txt").write_text("hello\n" * 20)
    with pytest.raises(VideoOpenError):
        analyze_video(tmp_path / "notes.txt")


def test_exposure_normalisation_undoes_a_change_of_brightness():
    rng = np.random.default_rng(0)
    bright = (rng.random((40, 60, 3)) * 200 + 20).astype(np.uint8)
    dark = (bright * 0.4).astype(np.uint8)
    a = np.asarray(normalise_exposure(Image.fromarray(bright)), dtype=float)
    b = np.asarray(normalise_exposure(Image.fromarray(dark)), dtype=float)
    assert np.abs(a - b).mean() < 3.0  # was ~70 grey levels apart before
    assert abs(a.mean() - 118) < 5


@pytest.mark.slow
def test_finds_an_object_entering_a_continuing_shot(tmp_path):
    data = pytest.importorskip("skimage.data")
    config = SyntheticVideoConfig(
        duration=12.0,
        width=192,
        height=108,
        fps=10,
        shot_seconds=(12.0, 12.0),
        object_share=1.0,
        nuisances=(0, 0),
    )
    path = tmp_path / "object.mp4"
    video = make_synthetic_video(
        path, [data.coffee(), data.rocket()], [data.chelsea()], seed=2, config=config
    )
    [event] = video.events
    assert event.kind == "object"
    found = [m.time for m in analyze_video(path, captioner="labels").novel_moments]
    assert len(found) == 1 and event.start - 1.5 <= found[0] <= event.end + 1.5, (event, found)


@pytest.mark.slow
def test_sampling_every_frame_still_finds_every_cut(tmp_path):
    # --every shorter than a frame samples every frame; the selection must count its seconds
    # (peaks +-1 s, persistence 8 s) in frames then, not in --every, or one cut hides the rest.
    data = pytest.importorskip("skimage.data")
    config = cuts_only(duration=15.0, fps=4, shot=5.0)
    path = tmp_path / "two_cuts.mp4"
    photos = [data.coffee(), data.astronaut(), data.chelsea()]
    video = make_synthetic_video(path, photos, seed=1, config=config)
    assert [(e.kind, e.start) for e in video.events] == [("cut", 5.0), ("cut", 10.0)]
    analysis = analyze_video(path, every=0.01, captioner="labels")
    assert len(analysis.moments) == 60
    assert [m.time for m in analysis.novel_moments] == [5.0, 10.0]


def test_torch_threads_are_restored_after_an_analysis_and_after_a_failure(one_cut_clip, tmp_path):
    import torch

    before = torch.get_num_threads()
    analyze_video(one_cut_clip, captioner="labels")
    assert torch.get_num_threads() == before
    with pytest.raises(ModelNotFound):  # fails while the decoding and encoding stages run
        analyze_video(one_cut_clip, captioner="labels", text_embedder="no-such-embedder")
    assert torch.get_num_threads() == before


def test_a_captioner_on_another_encoder_gets_that_encoders_features(one_cut_clip, monkeypatch):
    import torch

    import capsight.captioning.base as base
    import capsight.captioning.facade as facade
    from capsight.captioning.base import Captioner, CaptionResult
    from capsight.vision.encoder import EncodedImages

    seen: list[tuple[int, ...]] = []

    class OtherEncoder:
        def encode(self, images):
            n = len(images)
            return EncodedImages(torch.zeros(n, 1280), torch.zeros(n, 81, 1280),
                                 torch.zeros(n, 1000), (9, 9))  # fmt: skip

    class OnOtherFeatures(Captioner):
        name, encoder_name = "on-other", "other-encoder"

        def caption(self, encoded, decoding=None):
            seen.append(tuple(encoded.grid.shape))
            return [CaptionResult(text="a photo") for _ in range(len(encoded))]

    monkeypatch.setitem(base._REGISTRY, "on-other", OnOtherFeatures)
    monkeypatch.setattr(facade, "cached_encoder", lambda name: OtherEncoder())
    analysis = analyze_video(one_cut_clip, captioner="on-other")
    assert seen and all(shape[1:] == (81, 1280) for shape in seen)  # not the Lite0 grid's 49
    assert [m.time for m in analysis.novel_moments] == [4.0]  # novelty stays on Lite0's features


def test_video_captions_with_the_one_encoder_captioner_unless_asked_otherwise(
    monkeypatch, tmp_path
):
    import capsight.captioning.facade as facade
    import capsight.captioning.trained as trained
    from capsight.novelty.pipeline import VIDEO_DEFAULT_CAPTIONER, video_captioner_name

    if not (trained.MODELS_DIR / VIDEO_DEFAULT_CAPTIONER).is_dir():
        pytest.skip("no shipped captioner")
    assert video_captioner_name("default") == VIDEO_DEFAULT_CAPTIONER  # not the photo default
    assert video_captioner_name("show-and-tell") == "show-and-tell"
    monkeypatch.setattr(trained, "MODELS_DIR", tmp_path)  # nothing installed: whatever "default" is
    facade._cached_captioner.cache_clear()
    try:
        assert video_captioner_name("default") == "default"
    finally:
        facade._cached_captioner.cache_clear()


@pytest.mark.slow
@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_either_distance_finds_the_bundled_samples_events(metric):
    """Cuts at 5, 10 and 21 s and a dissolve over 14-17 s; a flicker and a shake are not events
    (scripts/make_sample_video.py). Euclidean once found none of them (its floor was too low)."""
    from importlib import resources

    with resources.as_file(resources.files("capsight.data").joinpath("sample.mp4")) as sample:
        analysis = analyze_video(sample, metric=metric, captioner="labels", thumbnail_size=None)
    found = [m.time for m in analysis.novel_moments]
    assert len(found) == 4 and found[:2] == [5.0, 10.0] and found[3] == 21.0
    assert 14.0 <= found[2] <= 17.0


@pytest.mark.slow
def test_a_quiet_run_records_what_sensitivity_1_would_find(tmp_path):
    """The hint for a video without novel moments suggests a higher sensitivity only where
    one would find something: the count recorded is what a run at sensitivity 1 finds."""
    data = pytest.importorskip("skimage.data")
    from capsight.io.synthetic_video import write_video

    path = tmp_path / "still.mp4"
    still = np.asarray(Image.fromarray(data.coffee()).resize((192, 108)))
    write_video(path, [still] * 60, fps=10)  # 6 s of one photo
    quiet = analyze_video(path, sensitivity=0.0, captioner="labels")
    assert not quiet.novel_moments
    at_most = quiet.extra["selection"]["novel_at_sensitivity_1"]
    assert at_most == len(analyze_video(path, sensitivity=1.0, captioner="labels").novel_moments)
    assert ("even at the highest sensitivity" in quiet.quiet_reason()) == (at_most == 0)
    at_1 = analyze_video(path, sensitivity=1.0, captioner="labels")  # nothing higher to try
    assert at_1.novel_moments or "even at the highest sensitivity" in at_1.quiet_reason()


@pytest.mark.slow
def test_a_flat_frame_is_captioned_as_blank_not_invented(tmp_path):
    """A dark title card amplified by exposure normalisation looked like "a man in a black
    shirt" to the captioner; a frame without detail is now called what it is."""
    from capsight.io.synthetic_video import write_video
    from capsight.novelty.frames import FLAT_CAPTION

    data = pytest.importorskip("skimage.data")
    photo = np.asarray(Image.fromarray(data.coffee()).resize((192, 108)))
    rng = np.random.default_rng(0)
    dark = rng.integers(8, 14, photo.shape).astype(np.uint8)  # near-black with sensor noise
    path = tmp_path / "card.mp4"
    write_video(path, [photo] * 30 + [dark] * 20 + [photo] * 30, fps=10)
    analysis = analyze_video(path, captioner="labels")
    captions = {m.time: m.caption for m in analysis.moments}
    assert captions[3.0] == captions[4.0] == FLAT_CAPTION
    assert all(captions[t] != FLAT_CAPTION for t in (0.0, 1.0, 2.0, 5.0, 6.0, 7.0))
    labels = {m.time: m.labels for m in analysis.moments}  # nor given ImageNet classes (noise)
    assert labels[3.0] == labels[4.0] == [] and all(labels[t] for t in (0.0, 1.0, 2.0, 5.0))


def test_a_stop_while_picking_the_novel_moments_keeps_every_moment(one_cut_clip, monkeypatch):
    """A Ctrl-C (or SIGTERM) after captioning, while the novel moments were being picked, had
    kept nothing: every moment is kept, captioned and scored, none marked, and the note says
    why; a second stop during the picking of a run stopped part-way keeps its part."""
    from capsight.novelty import pipeline
    from capsight.novelty.analysis import StoppedPartWay

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "select_novel_moments", stopped)
    with pytest.raises(StoppedPartWay) as stop:
        analyze_video(one_cut_clip, every=0.5)
    part = stop.value.analysis
    assert len(part.moments) == 16 and not part.novel_moments and part.picking_stopped
    assert all(m.caption and m.novelty is not None for m in part.moments[1:])
    assert "stopped_at" not in part.extra and part.cut_short() is None
    assert "stopped while they were being picked" in part.quiet_reason()
    with pytest.raises(KeyboardInterrupt) as plain:  # a batch keeps no partial reports
        analyze_video(one_cut_clip, every=0.5, partial=False)
    assert not hasattr(plain.value, "analysis")

    def stop_after_the_first_batch(fraction, message):
        if message.startswith("captioned up to"):
            raise KeyboardInterrupt

    with pytest.raises(StoppedPartWay) as stop:  # a stop part-way, then one while picking
        analyze_video(one_cut_clip, every=0.2, progress=stop_after_the_first_batch)
    part = stop.value.analysis
    assert part.extra["stopped_at"] == pytest.approx(3.0) and part.picking_stopped
    assert "(those analysed are captioned and scored" in part.quiet_reason()
    assert "stopped part-way: only the moments up to 3.0 s" in part.cut_short()


def test_the_captioner_is_asked_for_as_model_as_everywhere_else(one_cut_clip, tmp_path):
    """capsight.caption and the CLI say model=; analyze_video said captioner= only."""
    from capsight import analyze_videos

    analysis = analyze_video(one_cut_clip, model="labels", every=2.0)
    assert analysis.params.captioner == analysis.extra["captioner"] == "labels"
    assert analyze_video(one_cut_clip, model="labels", captioner="labels", every=2.0)
    with pytest.raises(InvalidParameter, match="both name the captioner"):
        analyze_video(one_cut_clip, model="labels", captioner="show-and-tell")
    with pytest.raises(InvalidParameter, match="both name the captioner"):
        list(analyze_videos([one_cut_clip], tmp_path / "o", model="a", captioner="b"))
    done = list(analyze_videos([one_cut_clip], tmp_path / "o", model="labels", every=2.0))
    assert done[0].analysis["params"]["captioner"] == "labels"
