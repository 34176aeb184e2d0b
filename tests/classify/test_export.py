"""Exported classifiers run in a fresh process with only torch and agree with capsight."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch

from capsight.classify.class_sets import parse_classes
from capsight.classify.classifier import image_to_tensor, predict
from capsight.classify.engines import create_engine
from capsight.classify.export import save_classifier
from capsight.errors import InvalidParameter

# Runs with -I (no PYTHONPATH, no user site) and capsight made unimportable: only torch remains.
_FRESH = textwrap.dedent(
    """
    import json, sys
    sys.modules["capsight"] = None  # any import of capsight now fails
    import torch
    path, images = sys.argv[1], torch.load(sys.argv[2])
    if path.endswith(".pt2"):
        extra = {"labels.json": ""}
        module = torch.export.load(path, extra_files=extra).module()
        labels = json.loads(extra["labels.json"])
    else:
        module = torch.jit.load(path)
        labels = list(module.labels)
    out = [module(x) for x in images]  # as the docs' loaders call it: no no_grad()
    print(json.dumps({"labels": labels, "top5": [o[0].topk(min(5, o.shape[-1])).indices.tolist() for o in out],
                      "grad": any(o.requires_grad for o in out),
                      "sums": [float(o.sum()) for o in out],
                      "capsight": [m for m, mod in sys.modules.items() if m.startswith("capsight") and mod is not None]}))
    """
)


def _run_fresh(path, images, tmp_path) -> dict:
    tensors = tmp_path / "images.pt"
    torch.save(images, tensors)
    script = tmp_path / "fresh.py"
    script.write_text(_FRESH)
    done = subprocess.run(
        [sys.executable, "-I", str(script), str(path), str(tensors)],
        capture_output=True,
        text=True,
        timeout=1200,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".pt", ".pt2"])
def test_offline_classifier_travels(suffix, photo, tmp_path):
    classes = parse_classes("cat, dog, car, cup, rocket, person, flag, bird")
    clf = create_engine("offline").build(classes)
    photos = [photo("chelsea"), photo("coffee"), photo("astronaut").resize((123, 77))]
    images = [image_to_tensor(p) for p in photos]  # each (1, 3, H, W) at its own size
    ours = predict(clf, photos)  # (3, 8)
    path = save_classifier(clf, tmp_path / f"clf{suffix}")
    result = _run_fresh(path, images, tmp_path)
    assert result["labels"] == list(classes.labels)
    assert result["capsight"] == []
    assert result["top5"] == [row.topk(5).indices.tolist() for row in ours]
    assert all(abs(s - 1) < 1e-4 for s in result["sums"])
    assert not result["grad"]  # probs.numpy() works without torch.no_grad()


@pytest.mark.slow
def test_tiny_clip_classifies_and_exports(tiny_clip, tmp_path):
    engine = create_engine("clip", str(tiny_clip))
    clf = engine.build(parse_classes("cat, dog, car"), ["a photo of a {}.", "art of the {}."])
    images = torch.rand(2, 3, 45, 70)
    with torch.no_grad():
        probs = clf(images)
    assert probs.shape == (2, 3)
    assert torch.allclose(probs.sum(-1), torch.ones(2), atol=1e-5)
    for suffix in (".pt", ".pt2"):
        path = save_classifier(clf, tmp_path / f"clip{suffix}")
        result = _run_fresh(path, [images[:1], images[1:]], tmp_path)
        assert result["labels"] == ["cat", "dog", "car"]
        assert result["top5"][0] == probs[0].topk(3).indices.tolist()


def test_missing_clip_weights_are_a_clear_error(tmp_path):
    from capsight.errors import ModelNotFound

    with pytest.raises(ModelNotFound, match="no such folder, nor a hub id in the local"):
        create_engine("clip", str(tmp_path / "no-such-clip"))


def test_a_clip_hub_id_is_never_fetched(monkeypatch, tmp_path):
    # Only the local cache is read: offline, a download attempt would retry for half a minute.
    import socket

    from transformers import CLIPModel

    from capsight.errors import ModelNotFound

    seen = {}

    def fake(name, **kwargs):
        seen.update(kwargs, name=name)
        raise OSError("stop here")

    def no_network(*args, **kwargs):
        raise AssertionError("the network was used")

    monkeypatch.setattr(CLIPModel, "from_pretrained", fake)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(ModelNotFound, match="capsight downloads nothing"):
        create_engine("clip", "someone/some-clip")
    assert seen == {}  # not in the cache: transformers is never handed the id (it would look it up)
    # In the cache (the hub's own layout): transformers gets the snapshot folder, not the id.
    snapshot = tmp_path / "hub" / "models--someone--cached-clip" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("abc123")
    with pytest.raises(ModelNotFound):
        create_engine("clip", "someone/cached-clip")
    assert seen == {"name": str(snapshot), "local_files_only": True}


def test_bad_output_paths(tmp_path):
    clf = create_engine("offline").build(parse_classes("cat,dog"))
    with pytest.raises(InvalidParameter, match=r"\.pt"):
        save_classifier(clf, tmp_path / "clf.onnx")
    with pytest.raises(InvalidParameter, match="does not exist"):
        save_classifier(clf, tmp_path / "missing" / "clf.pt")


def test_a_failed_export_leaves_the_existing_file_as_it_was(tmp_path, monkeypatch, tiny_classifier):
    import capsight.classify.export as export

    path = tmp_path / "clf.pt"
    save_classifier(tiny_classifier, path)
    works = path.read_bytes()

    def interrupted(classifier):
        raise KeyboardInterrupt

    monkeypatch.setattr(export, "to_torchscript", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_classifier(tiny_classifier, path)
    assert path.read_bytes() == works
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clf.pt"]  # no partial file left


def test_a_successful_export_replaces_an_earlier_classifier_and_nothing_else(
    tmp_path, tiny_classifier
):
    path = tmp_path / "clf.pt"
    save_classifier(tiny_classifier, path)
    path.touch()
    before = path.stat().st_mtime_ns
    save_classifier(tiny_classifier, path)
    assert (
        list(torch.jit.load(str(path)).labels) == ["a", "b"] and path.stat().st_mtime_ns != before
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clf.pt"]
    # A photo named .pt, or a PyTorch checkpoint (a zip archive as well), is not a classifier,
    # nor is a user's own module that carries a labels.json of its own.
    (tmp_path / "photo.pt").write_bytes(b"\xff\xd8\xff\xe0 a JPEG")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "model.pt")
    own = torch.jit.script(torch.nn.Linear(2, 2))
    torch.jit.save(own, str(tmp_path / "mine.pt"), _extra_files={"labels.json": '["a", "b"]'})
    torch.jit.save(
        own, str(tmp_path / "mine2.pt"), _extra_files={"labels.json": "[]", "engine": "mine"}
    )
    for name in ("photo.pt", "model.pt", "mine.pt", "mine2.pt"):
        before = (tmp_path / name).read_bytes()
        with pytest.raises(
            InvalidParameter, match=f"{name}: exists and is not a capsight classifier"
        ):
            save_classifier(tiny_classifier, tmp_path / name)
        assert (tmp_path / name).read_bytes() == before


def test_an_export_writes_through_a_link_and_keeps_the_file_mode(tmp_path, tiny_classifier):
    (tmp_path / "v3").mkdir()
    real = tmp_path / "v3" / "clf.pt"
    save_classifier(tiny_classifier, real)
    real.chmod(0o640)
    link = tmp_path / "current.pt"
    link.symlink_to(real)
    save_classifier(tiny_classifier, link)
    assert link.is_symlink()  # "current.pt" still points at the versioned file
    assert list(torch.jit.load(str(real)).labels) == ["a", "b"]
    assert real.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in (tmp_path / "v3").iterdir()) == ["clf.pt"]


@pytest.mark.parametrize(
    "images,message",
    [
        ((torch.rand(1, 3, 20, 30) * 255).to(torch.uint8), "divide 8-bit pixels by 255"),
        (torch.rand(1, 3, 20, 30) * 255, r"pixels in \[0, 1\], got values from"),
        ((torch.rand(1, 3, 20, 30) - 0.45) / 0.225, "do not normalise"),
        (torch.rand(1, 20, 30, 3), r"\(N, 3, H, W\) tensor, got shape \[1, 20, 30, 3\]"),
        (torch.rand(3, 20, 30), r"\(N, 3, H, W\)"),
        (torch.full((1, 3, 20, 30), float("nan")), "got NaN values"),
    ],
)
def test_the_torchscript_file_refuses_pixels_it_would_misread(
    tmp_path, images, message, tiny_classifier
):
    path = save_classifier(tiny_classifier, tmp_path / "clf.pt")
    module = torch.jit.load(str(path))
    # as docs/classify.md tells callers to catch
    with pytest.raises(torch.jit.Error, match=message):
        module(images)


def test_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, monkeypatch, tiny_classifier):
    """torch's own writer aborts the process on a full disk: the file is written by Python."""
    import errno
    from pathlib import Path

    path = tmp_path / "clf.pt"
    save_classifier(tiny_classifier, path)
    works = path.read_bytes()

    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(
        InvalidParameter, match="clf.pt: cannot write it \\(No space left on device\\)"
    ):
        save_classifier(tiny_classifier, path)
    monkeypatch.undo()
    assert path.read_bytes() == works
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clf.pt"]


def test_the_torchscript_file_takes_other_float_types(tmp_path, tiny_classifier):
    path = save_classifier(tiny_classifier, tmp_path / "clf.pt")
    module = torch.jit.load(str(path))
    images = torch.rand(2, 3, 20, 30)
    assert torch.allclose(module(images.double()), module(images))
    assert module(torch.rand(0, 3, 20, 30)).shape == (0, 2)


def test_the_exported_program_refuses_8_bit_pixels(tmp_path, caplog, tiny_classifier):
    import warnings

    classifier = tiny_classifier
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        program = torch.export.load(str(save_classifier(classifier, tmp_path / "clf.pt2"))).module()
    # torch.export.save warns about a file name without .pt2 on every build (saved to memory
    # first, it has none to warn about)
    assert not [w for w in caught if "pt2" in str(w.message)] and "pt2" not in caplog.text
    images = torch.rand(1, 3, 20, 30)
    assert torch.allclose(program(images), classifier(images))
    # (integer pixels in range too: the .pt refuses them by their type, as this does now)
    for wrong in (images * 255, (images * 255).to(torch.uint8), torch.ones(1, 3, 20, 30, dtype=torch.uint8),
                  torch.zeros(1, 3, 20, 30, dtype=torch.long), torch.ones(1, 3, 20, 30, dtype=torch.bool)):  # fmt: skip
        with pytest.raises(RuntimeError, match=r"expected float pixels in \[0, 1\]"):
            program(wrong)
    with pytest.raises(RuntimeError, match="got NaN values"):
        program(torch.full_like(images, float("nan")))
    with pytest.raises(RuntimeError, match="do not normalise"):  # ImageNet-normalised pixels
        program((images - 0.45) / 0.225)
    assert program(images[:0]).shape == (0, 2)  # min() of no pixels had raised
    # other float types are converted, as the .pt file converts them ("mat1 and mat2 must
    # have the same dtype" in the first matrix product had been all a float64 photo heard)
    assert torch.allclose(program(images.double()), program(images))
    assert torch.allclose(program(images.half()), program(images), atol=1e-3)
