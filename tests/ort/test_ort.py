"""The ONNX Runtime path computes what the torch path computes, and steps aside when it cannot."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import ImageOps

from capsight.captioning import MODELS_DIR
from capsight.errors import InvalidParameter, ModelNotFound

SAT = MODELS_DIR / "show-attend-tell"
needs_sat = pytest.mark.skipif(not SAT.is_dir(), reason="no shipped show-attend-tell")


def _photos(photo):
    photos = [photo(n) for n in ("chelsea", "coffee", "astronaut", "rocket")]
    return photos + [ImageOps.mirror(p) for p in photos]  # (8 photos)


@pytest.mark.slow
def test_encoder_matches_torch(encoder, photo):
    from capsight.ort.encoder import OrtImageEncoder

    photos = _photos(photo)
    ours, ref = OrtImageEncoder.load("efficientnet-lite0").encode(photos), encoder.encode(photos)
    np.testing.assert_allclose(ours.pooled, ref.pooled.numpy(), atol=1e-4)
    np.testing.assert_allclose(ours.grid, ref.grid.numpy(), atol=1e-3)
    np.testing.assert_allclose(ours.probs, ref.probs.numpy(), atol=1e-4)
    empty = OrtImageEncoder.load("efficientnet-lite0").encode([])
    assert (empty.pooled.shape, empty.grid.shape, empty.probs.shape) == (
        (0, 1280),
        (0, 49, 1280),
        (0, 1000),
    )
    names = [[n for n, _ in row] for row in OrtImageEncoder.top_classes(ours.probs, k=3)]
    assert names == [[n for n, _ in row] for row in encoder.top_classes(ref.probs, k=3)]


@needs_sat
@pytest.mark.slow
@pytest.mark.parametrize("method", ["beam", "greedy"])
def test_captions_match_torch_in_float32(encoder, photo, monkeypatch, method):
    from capsight.captioning.base import DecodingOptions, create_captioner
    from capsight.ort.captioner import OrtCaptioner

    monkeypatch.setenv("CAPSIGHT_PRECISION", "fp32")  # the torch path's arithmetic, not bf16
    photos = _photos(photo)
    encoded = encoder.encode(photos)
    options = DecodingOptions(method=method, beam_width=3)
    ref = create_captioner("show-attend-tell").caption(encoded, options)
    ours = OrtCaptioner.load(SAT).caption(encoder_arrays(encoded), options)
    assert [c.text for c in ours] == [r.text for r in ref]
    np.testing.assert_allclose([c.score for c in ours], [r.score for r in ref], atol=1e-3)


def encoder_arrays(encoded):
    from capsight.ort.encoder import ArrayEncoding

    return ArrayEncoding(encoded.pooled.numpy(), encoded.grid.numpy(), encoded.probs.numpy())


@needs_sat
def test_captioner_refuses_what_it_cannot_decode():
    from capsight.captioning.options import DecodingOptions
    from capsight.ort.captioner import OrtCaptioner

    captioner = OrtCaptioner.load(SAT)
    assert captioner.default_decoding.method == "beam"
    assert captioner.caption(encoder_arrays_empty()) == []
    with pytest.raises(ModelNotFound):
        captioner.caption(encoder_arrays_empty(), DecodingOptions(method="sample"))


def encoder_arrays_empty():
    from capsight.ort.encoder import ArrayEncoding

    return ArrayEncoding(np.zeros((0, 1280), np.float32), np.zeros((0, 49, 1280), np.float32),
                         np.zeros((0, 1000), np.float32))  # fmt: skip


@pytest.mark.slow
def test_minilm_matches_torch():
    from capsight.ort.text import OrtMiniLM
    from capsight.text.embedders import create_text_embedder

    texts = ["a dog runs on the beach", "", "two men are playing football in a field", "a cat"]
    ours, ref = OrtMiniLM.load().embed(texts), create_text_embedder("minilm").embed(texts)
    np.testing.assert_allclose(ours, ref, atol=1e-5)
    assert not ours[1].any()  # an empty caption is a zero row on both paths
    assert OrtMiniLM.load().embed([]).shape == (0, 384)


def test_graphs_are_keyed_by_their_sources_written_whole_and_pruned(tmp_path, monkeypatch):
    from capsight.ort.store import ensure_graphs, graph_path, prune_stale

    monkeypatch.setenv("CAPSIGHT_CACHE", str(tmp_path / "cache"))
    source = tmp_path / "weights.bin"
    source.write_bytes(b"v1")
    first = graph_path("net", [source])
    assert first.parent == tmp_path / "cache" / "onnx"
    built: list[str] = []

    def build(paths):
        built.append(paths[0].name)
        paths[0].write_bytes(b"graph")

    ensure_graphs([first], [source], build)
    ensure_graphs([first], [source], build)  # cached: not built again
    assert len(built) == 1 and first.read_bytes() == b"graph"
    time.sleep(0.01)
    source.write_bytes(b"v2 retrained")  # a changed source names another graph ...
    second = graph_path("net", [source])
    assert second != first

    def broken(paths):
        paths[0].write_bytes(b"half")
        raise RuntimeError("export failed")

    with pytest.raises(RuntimeError):
        ensure_graphs([second], [source], broken)
    assert not second.exists() and list(second.parent.glob("*.tmp")) == []
    ensure_graphs([second], [source], build)  # ... and its export deletes the stale one
    assert second.is_file() and not first.exists() and not first.with_suffix(".json").exists()
    source.unlink()  # a deleted run: its graphs go at the next export
    assert prune_stale(second.parent) == [second]
    assert [p.name for p in second.parent.iterdir()] == [".lock"]  # the exporters' lock file


def test_two_threads_exporting_at_once_build_once(tmp_path, monkeypatch):
    """A server's start-up load and its first video job may both find the graphs missing."""
    import threading

    from capsight.ort.store import ensure_graphs, graph_path

    monkeypatch.setenv("CAPSIGHT_CACHE", str(tmp_path / "cache"))
    source = tmp_path / "weights.bin"
    source.write_bytes(b"v1")
    path = graph_path("net", [source])
    built, failures = [], []

    def slow_build(paths):
        built.append(paths[0])
        time.sleep(0.3)
        paths[0].write_bytes(b"graph")

    def export():
        try:
            ensure_graphs([path], [source], slow_build)
        except Exception as exc:  # noqa: BLE001  recorded for the assertion below
            failures.append(exc)

    threads = [threading.Thread(target=export) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == [] and len(built) == 1 and path.read_bytes() == b"graph"


def test_pruning_keeps_other_versions_graphs_and_drops_leftovers(tmp_path, monkeypatch):
    import json as json_module

    import capsight.ort.store as store

    folder = tmp_path / "onnx"
    folder.mkdir()
    source = tmp_path / "weights.bin"
    source.write_bytes(b"w")
    fingerprint = store._fingerprint([source])
    (folder / "other-1.json").write_text(
        json_module.dumps({"code": "another", "sources": fingerprint})
    )
    (folder / "other-1.onnx").write_bytes(b"graph of another capsight sharing the cache")
    (folder / "orphan-2.onnx").write_bytes(b"no note")
    (folder / "net-3.onnx.123.tmp").write_bytes(b"left by a killed export")
    old = time.time() - 2 * 3600
    os.utime(folder / "net-3.onnx.123.tmp", (old, old))
    assert sorted(p.name for p in store.prune_stale(folder)) == [
        "net-3.onnx.123.tmp",
        "orphan-2.onnx",
    ]
    assert (folder / "other-1.onnx").exists()  # in use elsewhere, recently
    ancient = time.time() - (store.KEEP_OTHER_CODE_DAYS + 1) * 86400
    os.utime(folder / "other-1.json", (ancient, ancient))
    assert store.prune_stale(folder) == [folder / "other-1.onnx"] and list(folder.iterdir()) == []

    # Of other versions' graphs, those used within a day stay, and the last used version's
    # (one whose sources are gone does not count): upgrades do not pile up.
    gone_source = tmp_path / "removed.bin"
    gone_source.write_bytes(b"w")
    gone_fingerprint = store._fingerprint([gone_source])
    gone_source.unlink()

    def graphs(versions):
        for i, (code, hours_ago, sources) in enumerate(versions):
            (folder / f"g-{i}.json").write_text(
                json_module.dumps({"code": code, "sources": sources})
            )
            (folder / f"g-{i}.onnx").write_bytes(b"graph")
            when = time.time() - hours_ago * 3600
            os.utime(folder / f"g-{i}.json", (when, when))

    old_ones = [("v1", 72, fingerprint), ("v2", 48, fingerprint), ("v2", 120, fingerprint),
                ("v3", 30, fingerprint), ("v4", 26, gone_fingerprint)]  # fmt: skip
    graphs(old_ones)
    assert sorted(p.name for p in store.prune_stale(folder)) == [
        "g-0.onnx",
        "g-1.onnx",
        "g-2.onnx",
        "g-4.onnx",
    ]
    # v3: the last used with its sources
    assert [p.name for p in folder.glob("*.onnx")] == ["g-3.onnx"]
    graphs([*old_ones, ("v5", 2, fingerprint), ("v6", 1, fingerprint)])
    assert "g-3.onnx" in [p.name for p in store.prune_stale(folder)]
    # both used today
    assert sorted(p.name for p in folder.glob("*.onnx")) == ["g-5.onnx", "g-6.onnx"]
    for path in folder.iterdir():
        path.unlink()

    monkeypatch.setenv("CAPSIGHT_CACHE", str(tmp_path))
    monkeypatch.setattr(store.os, "access", lambda *args: False)  # a read-only cache
    built = []
    with pytest.raises(PermissionError, match="CAPSIGHT_CACHE"):
        store.ensure_graphs([store.graph_path("net", [source])], [source], built.append)
    assert built == []  # refused before the (slow) export, not after


@pytest.mark.slow
def test_a_damaged_graph_is_exported_again(tmp_path, monkeypatch, photo):
    from capsight.ort.encoder import OrtImageEncoder
    from capsight.ort.store import open_graphs, session

    monkeypatch.setenv("CAPSIGHT_CACHE", str(tmp_path))
    OrtImageEncoder.load("efficientnet-lite0")
    (graph,) = (tmp_path / "onnx").glob("*.onnx")
    assert graph.with_suffix(".json").is_file()
    graph.write_bytes(b"cut short by a full disk")
    session.cache_clear()
    assert OrtImageEncoder.load("efficientnet-lite0").encode([photo("chelsea")]).pooled.shape == (
        1,
        1280,
    )

    def garbage(paths):
        paths[0].write_bytes(b"never a graph")

    source = tmp_path / "weights.bin"
    source.write_bytes(b"weights")
    with pytest.raises(RuntimeError, match="cannot read"):  # the runtime falls back to torch
        open_graphs(["x"], [source], garbage)


def test_a_damaged_graph_in_a_read_only_cache_is_named_with_what_to_do(tmp_path, monkeypatch):
    """It had said only "cannot write its graphs to the cache (Permission denied)", the
    damaged file unnamed, as it tried to delete it."""
    import capsight.ort.store as store

    monkeypatch.setenv("CAPSIGHT_CACHE", str(tmp_path))
    source = tmp_path / "weights.bin"
    source.write_bytes(b"weights")
    store.ensure_graphs([store.graph_path("x", [source])], [source],
                        lambda paths: paths[0].write_bytes(b"never a graph"))  # fmt: skip
    store.session.cache_clear()
    monkeypatch.setattr(store.os, "access", lambda *args: False)  # now read-only
    with pytest.raises(RuntimeError, match=r"cannot read x-\w+\.onnx, a damaged graph in the "
                                           r"read-only cache .*: delete it there"):  # fmt: skip
        store.open_graphs(["x"], [source], lambda paths: None)
    assert store.graph_path("x", [source]).is_file()  # nothing deleted


def test_a_read_only_cache_without_its_lock_file_is_worked_on_unlocked(tmp_path, monkeypatch):
    """`capsight models --prepare` on a cache copied without .lock had ended "no such file"."""
    import capsight.ort.store as store

    folder = tmp_path / "onnx"
    folder.mkdir()
    real_open = os.open

    def read_only(path, flags, *args):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(store.os, "open", read_only)
    with store.folder_locked(folder) as locked:
        assert locked is False


def test_runtime_setting_and_fallbacks(monkeypatch, tmp_path):
    from capsight.ort.video import captioner_folder, video_models

    monkeypatch.setenv("CAPSIGHT_RUNTIME", "torch")
    assert video_models("default", "minilm", "efficientnet-lite0") is None
    monkeypatch.setenv("CAPSIGHT_RUNTIME", "gpu")
    with pytest.raises(InvalidParameter, match="CAPSIGHT_RUNTIME"):
        video_models("default", "minilm", "efficientnet-lite0")
    monkeypatch.setenv("CAPSIGHT_RUNTIME", "auto")
    assert video_models("labels", "minilm", "efficientnet-lite0") is None  # not a checkpoint
    assert video_models("default", "minilm", "efficientnet-lite2") is None  # SAT reads Lite0
    assert captioner_folder(str(tmp_path)) is None
    monkeypatch.setenv("CAPSIGHT_RUNTIME", "onnx")  # the variable named: it makes this an error
    with pytest.raises(ModelNotFound, match=r"^captioner 'labels' is not a show-attend-tell .*, "
                                            r"and CAPSIGHT_RUNTIME=onnx asks for ONNX Runtime "
                                            r"only \(unset it to run on torch\)$"):  # fmt: skip
        video_models("labels", "minilm", "efficientnet-lite0")
    if SAT.is_dir():
        run = tmp_path / "run"
        (run / "best").mkdir(parents=True)
        for f in SAT.iterdir():
            (run / "best" / f.name).symlink_to(f)
        assert captioner_folder(str(run)) == run / "best"  # a training run stands for its best


@pytest.fixture(scope="module")
def one_cut_clip(tmp_path_factory):
    """8 s, 192x108: the coffee photo, a hard cut at 4 s to the astronaut."""
    from capsight.io.synthetic_video import SyntheticVideoConfig, make_synthetic_video

    data = pytest.importorskip("skimage.data")
    config = SyntheticVideoConfig(duration=8.0, width=192, height=108, fps=10, shot_seconds=(4.0, 4.0),
                                  dissolve_share=0.0, object_share=0.0, nuisances=(0, 0))  # fmt: skip
    path = tmp_path_factory.mktemp("clip") / "one_cut.mp4"
    return make_synthetic_video(path, [data.coffee(), data.astronaut()], seed=1, config=config).path


@needs_sat
@pytest.mark.slow
def test_both_runtimes_find_the_same_moments(one_cut_clip, monkeypatch):
    from capsight.novelty.pipeline import analyze_video

    runs = {}
    for runtime in ("onnx", "torch"):
        monkeypatch.setenv("CAPSIGHT_RUNTIME", runtime)
        runs[runtime] = analyze_video(one_cut_clip)
    ours, ref = runs["onnx"], runs["torch"]
    assert (ours.extra["runtime"], ref.extra["runtime"]) == ("onnxruntime", "torch")
    assert [m.time for m in ours.novel_moments] == [m.time for m in ref.novel_moments] == [4.0]
    visual = [
        (a.novelty_visual or 0) - (b.novelty_visual or 0)
        for a, b in zip(ours.moments, ref.moments, strict=True)
    ]
    assert np.abs(visual).max() < 1e-3  # float32 on both; captions may differ (bf16 on torch)


@needs_sat
@pytest.mark.slow
def test_video_analysis_never_imports_torch(one_cut_clip):
    """What makes a new `capsight video` process fast (docs/speed.md); graphs exported first."""
    code = (
        "import sys; from capsight.novelty.pipeline import analyze_video; "
        f"a = analyze_video({str(one_cut_clip)!r}); "
        "print(a.extra['runtime'], 'torch' in sys.modules, len(a.moments))"
    )
    env = {**os.environ, "CAPSIGHT_RUNTIME": "auto"}
    for _ in range(2):  # the first run may export the graphs (with torch); the second must not
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
        )
    assert out.stdout.split() == ["onnxruntime", "False", "8"]


def test_a_broken_onnxruntime_is_not_taken_for_a_damaged_graph(tmp_path, monkeypatch):
    from capsight.ort.store import open_graphs

    monkeypatch.setenv("CAPSIGHT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # its import fails
    source = tmp_path / "weights.bin"
    source.write_bytes(b"v1")
    built = []
    with pytest.raises(ImportError):
        open_graphs(["net"], [source], built.append)
    assert built == []  # nothing exported, nothing deleted


def test_models_names_an_onnxruntime_installed_under_another_name(monkeypatch):
    import importlib.metadata

    from capsight.ort.store import code_version
    from capsight.ort.video import cache_status

    code_version()  # cached with the real versions before they are hidden

    def version(name):
        if name == "onnxruntime":
            raise importlib.metadata.PackageNotFoundError(name)  # onnxruntime-gpu, say
        return "1.0"

    monkeypatch.setattr(importlib.metadata, "version", version)
    assert cache_status()["onnxruntime"] == "installed (version unknown)"


def test_pruning_a_read_only_cache_leaves_it_as_it_is(tmp_path, monkeypatch):
    import capsight.ort.store as store

    (tmp_path / "orphan.onnx").write_bytes(b"no note")

    def refuse(self, missing_ok=False):
        raise PermissionError(13, "Read-only file system")

    monkeypatch.setattr(store.Path, "unlink", refuse)
    assert store.prune_stale(tmp_path) == [] and (tmp_path / "orphan.onnx").exists()


def test_a_graphs_key_survives_a_container_image_that_keeps_whole_seconds(tmp_path):
    """Graphs exported while an image is built must still match in a container from the pulled
    image, whose layers dropped the sources' sub-second modification times."""
    import capsight.ort.store as store

    source = tmp_path / "weights.bin"
    source.write_bytes(b"w")
    os.utime(source, ns=(1_700_000_000_700_000_000, 1_700_000_000_700_000_000))
    built = store.graph_key([source])
    os.utime(source, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
    assert store.graph_key([source]) == built
    os.utime(source, ns=(1_700_000_005_000_000_000, 1_700_000_005_000_000_000))  # really changed
    assert store.graph_key([source]) != built


def test_the_code_version_covers_the_loaders_the_export_runs_and_torch(monkeypatch):
    """A fix to read_encoder_weights (vision/encoder.py) kept serving the old graph."""
    import importlib.metadata
    from pathlib import Path

    import capsight.ort.store as store

    package = Path(store.__file__).resolve().parents[1]
    digested = []
    real_read = Path.read_bytes

    def read(self):
        digested.append(self.relative_to(package).as_posix())
        return real_read(self)

    store.code_version.cache_clear()
    monkeypatch.setattr(Path, "read_bytes", read)
    try:
        before = store.code_version()
        for module in ("vision/encoder.py", "captioning/checkpoint.py", "vision/weights.py",
                       "vision/fused_convolution.py", "text/bert.py", "ort/export.py"):  # fmt: skip
            assert module in digested, module
        monkeypatch.undo()
        real = importlib.metadata.version
        monkeypatch.setattr(importlib.metadata, "version",
                            lambda name: "9.9" if name == "torch" else real(name))  # fmt: skip
        store.code_version.cache_clear()
        assert store.code_version() != before  # another torch traces other graphs
    finally:
        monkeypatch.undo()
        store.code_version.cache_clear()


def test_a_lock_file_of_another_user_still_locks_and_leftovers_go_under_the_lock(
    tmp_path, monkeypatch
):
    """The lock was opened for appending: a .lock another uid made (a shared volume) stopped
    every export with Permission denied; a killed export's .tmp stayed for good."""
    import capsight.ort.store as store

    monkeypatch.setenv("CAPSIGHT_CACHE", str(tmp_path))
    folder = tmp_path / "onnx"
    folder.mkdir()
    (folder / ".lock").touch()
    (folder / ".lock").chmod(0o444)
    real_open = os.open

    def no_writing(path, flags, *args):
        if os.fspath(path).endswith(".lock") and flags & (os.O_WRONLY | os.O_RDWR | os.O_APPEND):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(store.os, "open", no_writing)
    real_builtin_open = open

    def builtin_open(file, mode="r", *args, **kwargs):
        if os.fspath(file).endswith(".lock") and mode != "r":
            raise PermissionError(13, "Permission denied", os.fspath(file))
        return real_builtin_open(file, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", builtin_open)
    # just written, yet a killed export's: seen under the lock
    left = folder / "net-1.onnx.0123.tmp"
    left.write_bytes(b"half a graph")
    source = tmp_path / "weights.bin"
    source.write_bytes(b"w")
    path = store.graph_path("net", [source])
    store.ensure_graphs([path], [source], lambda paths: paths[0].write_bytes(b"graph"))
    assert path.read_bytes() == b"graph" and not left.exists()


def test_a_full_disk_names_the_folder_and_the_room_the_graphs_need(monkeypatch, tmp_path, caplog):
    import errno

    import capsight.ort.video as ort_video

    def full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setenv("CAPSIGHT_CACHE", str(tmp_path))
    monkeypatch.setattr(ort_video, "_load", full)
    monkeypatch.setenv("CAPSIGHT_RUNTIME", "auto")
    assert ort_video.video_models("default", "minilm", "efficientnet-lite0") is None
    assert f"no space left in {tmp_path / 'onnx'} for its graphs, ~140 MB" in caplog.text
    monkeypatch.setenv("CAPSIGHT_RUNTIME", "onnx")
    with pytest.raises(ModelNotFound, match="set CAPSIGHT_CACHE to another disk"):
        ort_video.video_models("default", "minilm", "efficientnet-lite0")

    def unwritable(*args):  # had read "[Errno 2] No such file or directory: '/proc/x'"
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(tmp_path / "onnx"))

    monkeypatch.setattr(ort_video, "_load", unwritable)
    with pytest.raises(ModelNotFound, match=rf"cannot write its graphs to the cache "
                       rf"{tmp_path / 'onnx'} \(No such file or directory\): set CAPSIGHT_CACHE"):  # fmt: skip
        ort_video.video_models("default", "minilm", "efficientnet-lite0")

    def no_checkpoint(*args):  # a model file elsewhere: not the cache's fault
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", "/runs/x/model.bin")

    monkeypatch.setattr(ort_video, "_load", no_checkpoint)
    with pytest.raises(ModelNotFound, match="No such file or directory: '/runs/x/model.bin'"):
        ort_video.video_models("default", "minilm", "efficientnet-lite0")


def test_every_cache_reads_capsight_cache_alike(tmp_path, monkeypatch):
    """An empty CAPSIGHT_CACHE put classify's texts in ./classify (the ONNX graphs went to the
    default); a relative one was shown relative."""
    from capsight.cache_root import cache_root
    from capsight.classify.text_cache import cache_dir as text_dir
    from capsight.ort.store import cache_dir as graph_dir

    monkeypatch.chdir(tmp_path)
    for value, root in (("", Path.home() / ".cache" / "capsight"), ("  ", Path.home() / ".cache" / "capsight"),
                        ("rel", tmp_path / "rel"), ("~/c", Path.home() / "c")):  # fmt: skip
        monkeypatch.setenv("CAPSIGHT_CACHE", value)
        assert cache_root() == graph_dir() == root and text_dir() == root / "classify", value


@needs_sat
def test_a_checkpoint_whose_decoding_is_not_options_is_one_line(tmp_path):
    """ "decoding": "beam" was an AttributeError traceback on the video path, as on the torch one."""
    import json
    import shutil

    from capsight.ort.captioner import OrtCaptioner

    folder = tmp_path / "sat"
    shutil.copytree(SAT, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "decoding": "beam"}))
    with pytest.raises(ModelNotFound, match="its config's decoding 'beam' is not decoding options"):
        OrtCaptioner("sat", folder, None, None)  # (its graphs are not needed to read its config)


def test_the_export_note_names_each_graph_it_writes(tmp_path, monkeypatch):
    """A captioner's two graphs had been announced as "show-attend-tell-start" alone."""
    import capsight.ort.store as store

    monkeypatch.setenv("CAPSIGHT_CACHE", str(tmp_path))
    source = tmp_path / "weights.bin"
    source.write_bytes(b"w")
    paths = [store.graph_path(n, [source]) for n in ("net-start", "net-step")]
    said = []
    store.ensure_graphs(
        paths, [source], lambda tmp: [p.write_bytes(b"g") for p in tmp], said.append
    )
    assert said == ["exporting net-start and net-step for ONNX Runtime (once)"]
