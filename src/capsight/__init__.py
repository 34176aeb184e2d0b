"""capsight: describe images in words and find the moments in a video unlike what came before.

    >>> import capsight
    >>> capsight.caption(["cat.jpg"])[0].text                      # the photo default
    'a little girl is playing on a bed'
    >>> sampling = capsight.DecodingOptions(method="sample", temperature=0.8, num_captions=3, seed=1)
    >>> capsight.caption(["cat.jpg"], model="show-attend-tell", decoding=sampling)[0].alternatives
    >>> capsight.caption(["cat.jpg"], decoding=capsight.DecodingOptions(num_captions=3))
    >>> capsight.classify_images(["cat.jpg"], "cat, dog, car", top=2)[0].top   # zero-shot
    [('cat', 0.995...), ('dog', ...)]
    >>> analysis = capsight.analyze_video("clip.mp4", every=1.0)
    >>> [(m.time, m.caption) for m in analysis.novel_moments]
    >>> capsight.write_outputs(analysis, "out/")  # analysis.json, moments.csv, novelty.png, ...
    >>> import json                                            # an analysis.json read back
    >>> again = capsight.Analysis.from_dict(json.loads(open("out/analysis.json").read()))
    >>> for outcome in capsight.analyze_videos(["a.mp4", "b.mp4"], "out/archive", workers=2):
    ...     print(outcome.video, outcome.error or outcome.folder)
    >>> from capsight.vision.heatmaps import attention_sheet   # where each word looked
    >>> r = capsight.caption("cat.jpg", model="show-attend-tell")[0]
    >>> attention_sheet("cat.jpg", r.attention, r.tokens, title=r.text).save("attention.png")

``caption`` and ``describe_images`` (caption + ImageNet labels + model name) take paths, bytes,
PIL images or NumPy arrays, as does ``classify_images`` (zero-shot classes: a comma-separated list,
a list, or a built-in set's name); ``encode_images`` and ``word_vectors`` give the shared image encoder's
CNN features and the captioner's vectors of its words. What they return is importable from here
too (``CaptionResult``, ``ImageDescription``, ``Prediction``, ``EncodedImages``, ``Moment``,
``VideoInfo``, ``AnalysisParams``, ``VideoOutcome``). Every error a caller can cause is a ``CapsightError`` (``capsight.errors``
has its kinds) with a one-line message. Library calls print nothing.

Heavy libraries (torch, transformers) are imported only when a function that needs them runs.
"""

from __future__ import annotations

import os as _os
import sys as _sys
import types as _types

# ONNX Runtime (the video path's models) sends usage events to Microsoft unless told not to;
# capsight runs offline. Read when onnxruntime starts, so capsight must be imported first (all of
# capsight's own paths are): ORT_DISABLE_TELEMETRY is what 1.32 honours (checked: no device id
# is written, no events host looked up), ORT_TELEMETRY_DISABLED what onnxruntime's change #29843
# (2026-07) made a full opt-out in the releases that carry it.
_os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
_os.environ.setdefault("ORT_TELEMETRY_DISABLED", "1")

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "analyze_video",
    "analyze_videos",
    "write_outputs",
    "Analysis",
    "caption",
    "classify_images",
    "describe_images",
    "encode_images",
    "word_vectors",
    "DecodingOptions",
    "CapsightError",
    # what the functions above return, for type hints and isinstance
    "CaptionResult",
    "ImageDescription",
    "Prediction",
    "EncodedImages",
    "Moment",
    "VideoInfo",
    "AnalysisParams",
    "VideoOutcome",
]

from capsight.errors import CapsightError

# Loaded on first use (``_LazyModule.__getattr__``): name -> the module that defines it.
_LAZY = {
    "analyze_video": "capsight.novelty.pipeline",
    "analyze_videos": "capsight.batch",
    "write_outputs": "capsight.novelty.reports",
    "Analysis": "capsight.novelty.analysis",
    "caption": "capsight.captioning.facade",
    "classify_images": "capsight.classify.engines",
    "describe_images": "capsight.captioning.facade",
    "encode_images": "capsight.captioning.facade",
    "word_vectors": "capsight.captioning.facade",
    "DecodingOptions": "capsight.captioning.options",
    "CaptionResult": "capsight.captioning.base",
    "ImageDescription": "capsight.captioning.facade",
    "Prediction": "capsight.classify.classifier",
    "EncodedImages": "capsight.vision.encoder",
    "Moment": "capsight.novelty.analysis",
    "VideoInfo": "capsight.novelty.analysis",
    "AnalysisParams": "capsight.novelty.analysis",
    "VideoOutcome": "capsight.batch.outcome",
}


class _LazyModule(_types.ModuleType):
    """capsight's module type: the lazy names load on first use, and ``dir``, tab completion and
    ``help(capsight)`` list them (as methods here, not module functions that pydoc would show)."""

    def __getattr__(self, name: str):
        if name in _LAZY:
            import importlib

            if name != "DecodingOptions" and "torch" not in _sys.modules:
                # As every capsight command but train does: OpenMP threads that spin while they
                # wait ran capsight.caption 2x slower on a busy machine (7.4-8.1 s against 2.6-4.8
                # s a photo at load 3.5), and cost nothing idle. Before torch loads; yours wins.
                _os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

            return getattr(importlib.import_module(_LAZY[name]), name)
        raise AttributeError(f"module 'capsight' has no attribute {name!r}")

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *_LAZY} - {"annotations"})  # (from __future__)


_sys.modules[__name__].__class__ = _LazyModule
