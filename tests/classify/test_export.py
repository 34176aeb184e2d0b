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
    with torch.no_grad():
        out = [module(x) for x in images]
    print(json.dumps({"labels": labels, "top5": [o[0].topk(min(5, o.shape[-1])).indices.tolist() for o in out],
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
        capture_output=True, text=True, timeout=1200, cwd=tmp_path,
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


def test_a_clip_hub_id_is_never_fetched(monkeypatch):
    # Only the local cache is read: offline, a download attempt would retry for half a minute.
    from transformers import CLIPModel

    from capsight.errors import ModelNotFound

    seen = {}

    def fake(name, **kwargs):
        seen.update(kwargs)
        raise OSError("not in the cache")

    monkeypatch.setattr(CLIPModel, "from_pretrained", fake)
    with pytest.raises(ModelNotFound, match="capsight downloads nothing"):
        create_engine("clip", "someone/some-clip")
    assert seen == {"local_files_only": True}


def test_bad_output_paths(tmp_path):
    clf = create_engine("offline").build(parse_classes("cat,dog"))
    with pytest.raises(InvalidParameter, match=r"\.pt"):
        save_classifier(clf, tmp_path / "clf.onnx")
    with pytest.raises(InvalidParameter, match="does not exist"):
        save_classifier(clf, tmp_path / "missing" / "clf.pt")
