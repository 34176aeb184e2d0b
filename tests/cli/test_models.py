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
