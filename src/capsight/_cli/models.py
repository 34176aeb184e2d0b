"""``capsight models``: which captioners, image encoders and text embedders are installed.

    $ capsight models
    captioners (default: labels)
      labels      ImageNet class names in a template (no trained language model)
    image encoders
      efficientnet-lite0  installed
    text embedders
      minilm      installed
      word-mean   installed
    video analysis
      runtime     onnxruntime 1.32.0, graphs exported (4 graphs, 136 MB in ~/.cache/capsight/onnx)

A captioner whose checkpoint is missing is listed as "not installed" with the reason. ``--json``
prints the same as one JSON object. ``--prepare`` exports the video models for ONNX Runtime
first (``capsight.ort``), as a Docker build does.
"""

from __future__ import annotations

import argparse
import json
import sys


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "models",
        help="list the installed captioners, image encoders and text embedders",
        description="List the models capsight can use here, and which captioner is the default.",
    )
    p.add_argument(
        "checkpoints",
        nargs="*",
        metavar="FOLDER",
        help="describe these trained captioners instead (a `capsight train` run folder or its "
        "best/, or an installed captioner's name): architecture, encoder, vocabulary, "
        "validation scores",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--prepare",
        action="store_true",
        help="export the video models for ONNX Runtime now (else the first "
        "`capsight video` does it)",
    )
    return p


def collect_models() -> dict:
    """{"default_captioner", "captioners": [...], "encoders": [...], "text_embedders": [...]}."""
    from capsight.captioning.base import (
        available_captioners,
        create_captioner,
        default_captioner_name,
    )
    from capsight.errors import CapsightError
    from capsight.text.embedders import minilm_path
    from capsight.vision.efficientnet_lite import VARIANTS
    from capsight.vision.encoder import available_encoders

    captioners = []
    for name in available_captioners():
        if name == "checkpoint":  # not a model of its own: how a trained folder is loaded
            captioners.append({"name": name, "installed": None, "reason": "a folder `capsight "
                               "train` wrote, given as the model (--model runs/sat/best)"})  # fmt: skip
            continue
        try:
            info = {"installed": True, **create_captioner(name).describe()}
        except CapsightError as exc:
            info = {"installed": False, "reason": str(exc)}
        except TypeError:
            # A factory with required arguments (e.g. "checkpoint" needs a folder) cannot be
            # chosen by name alone.
            info = {
                "installed": None,
                "reason": "built from arguments (e.g. a checkpoint folder), not by name alone",
            }
        captioners.append({"name": name, **info})

    installed = set(available_encoders())
    encoders = [
        {"name": name, "installed": name in installed, "resolution": VARIANTS[name].resolution}
        for name in VARIANTS
    ]

    try:
        minilm_path()
        minilm_ok, reason = True, None
    except CapsightError as exc:
        minilm_ok, reason = False, str(exc)
    # Both embedders read the all-MiniLM-L6-v2 package: the network, or its word-piece table.
    embedders = [
        {
            "name": "minilm",
            "installed": minilm_ok,
            "dim": 384,
            "kind": "all-MiniLM-L6-v2 sentence embedding (mean pooled)",
        },
        {
            "name": "word-mean",
            "installed": minilm_ok,
            "dim": 384,
            "kind": "mean of the caption's word-piece vectors (the original project's method)",
        },
    ]
    if reason:
        for e in embedders:
            e["reason"] = reason
    from capsight.ort.video import cache_status

    return {
        "default_captioner": default_captioner_name(),
        "captioners": captioners,
        "encoders": encoders,
        "text_embedders": embedders,
        "video_runtime": cache_status(),
    }


def describe_checkpoints(folders: list[str]) -> dict[str, dict]:
    """{folder: what its captioner says of itself}, each loaded as `--model FOLDER` loads it
    (ModelNotFound, in one line, for a folder that holds no whole checkpoint)."""
    from capsight.captioning.facade import resolve_captioner

    described = {}
    for folder in folders:
        captioner, _ = resolve_captioner(folder)
        info = captioner.describe()
        info.pop("name", None)  # ("checkpoint": how a folder is loaded, not what it is)
        described[folder] = info
    return described


def run(args: argparse.Namespace) -> int:
    if args.prepare:
        from capsight.ort.video import prepare_video_default

        prepare_video_default(lambda what: print(f"capsight: {what}", file=sys.stderr))
    if args.checkpoints:  # (a trained run had no command that said what it was)
        described = describe_checkpoints(args.checkpoints)
        if args.json:
            json.dump(described, sys.stdout, indent=2, default=str)
            sys.stdout.write("\n")
            return 0
        for folder, info in described.items():
            print(folder)
            if "beam_width" in info:  # "beam 4" on one line
                info["decoding"] = f"{info['decoding']} {info.pop('beam_width')}"
            for key, value in info.items():
                if isinstance(value, dict):  # the scores (not val_seconds, a time)
                    value = ", ".join(f"{k.removeprefix('val_')} {v:g}" for k, v in value.items()
                                      if isinstance(v, float) and k != "val_seconds")  # fmt: skip
                    # (not what `capsight eval` prints: the model card's 0.5978 read as 0.611's)
                    value += " (as training scored it; capsight eval DATA --split val scores " \
                             "with pycocoevalcap)" if value else ""  # fmt: skip
                print(f"  {key:<23}{value}")
        return 0
    models = collect_models()
    if args.json:
        json.dump(models, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
        return 0
    from capsight.vision.weights import install_hint

    print(f"captioners (default: {models['default_captioner']})")
    for c in models["captioners"]:
        detail = c.get("kind") or c.get("description") or "installed"
        if c["installed"] is None:
            detail = c["reason"]
        elif not c["installed"]:
            detail = f"not installed: {c['reason']}"
        print(f"  {c['name']:<23}{detail}")
    print("image encoders")
    for e in models["encoders"]:
        state = (f"installed, {e['resolution']} px" if e["installed"] else
                 f"not installed (its ImageNet weights: {install_hint(e['name'])})")  # fmt: skip
        print(f"  {e['name']:<23}{state}")
    print("text embedders")
    for e in models["text_embedders"]:
        detail = e["kind"] if e["installed"] else f"not installed: {e['reason']}"
        print(f"  {e['name']:<23}{detail}")
    print("video analysis")
    print(f"  {'runtime':<23}{describe_runtime(models['video_runtime'])}")
    return 0


def describe_runtime(status: dict) -> str:
    """One line: what runs a video's models, and whether the ONNX graphs are exported."""
    if status["setting"] == "torch":
        return "torch (CAPSIGHT_RUNTIME=torch)"
    if status["onnxruntime"] is None:
        return "torch (onnxruntime is not installed: pip install onnxruntime onnx)"
    room = f"{status['graphs']} graphs, {status['megabytes']:g} MB"
    cache = f"{room} in {status['folder']}"
    if status["video_default_ready"]:
        others = status["graphs"] - status.get("current_graphs", status["graphs"])
        # Other versions' (an upgrade's, an edit's), other encoders' or checkpoints': "53
        # graphs, 1783.5 MB" had lumped them in with the video default's.
        if others > 0:
            spare = round(status["megabytes"] - status["current_megabytes"], 1)
            cache = (f"{status['current_graphs']} graphs, {status['current_megabytes']:g} MB in "
                     f"{status['folder']}, beside {others} other graphs, {spare:g} MB")  # fmt: skip
        return f"onnxruntime {status['onnxruntime']}, graphs exported ({cache})"
    if not status.get("writable", True) and status["setting"] == "onnx":
        return (f"none: CAPSIGHT_RUNTIME=onnx, but {status['folder']} cannot be written, so the "
                "ONNX graphs cannot be exported and `capsight video` stops with an error; set "
                "CAPSIGHT_CACHE to a writable folder")  # fmt: skip
    if not status.get("writable", True):
        return (f"torch: {status['folder']} cannot be written, so the ONNX graphs cannot be "
                "exported and video runs on torch (slower); set CAPSIGHT_CACHE to a writable "
                "folder")  # fmt: skip
    # Other versions' graphs (an upgrade, an edited checkout): their room said too, as the
    # README promises; the line had named only the folder.
    held = f" (it holds {room} now)" if status["graphs"] else ""
    return (
        f"onnxruntime {status['onnxruntime']}; the first `capsight video` exports the graphs "
        f"(or capsight models --prepare) into {status['folder']}{held}"
    )
