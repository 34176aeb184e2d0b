"""Video analysis on ONNX Runtime: the same models and arithmetic, without importing torch.

    >>> from capsight.ort.video import video_models
    >>> models = video_models("default", "minilm", "efficientnet-lite0")   # None: use torch
    >>> encoding = models.encoder.encode(frames)          # NumPy arrays
    >>> [c.text for c in models.captioner.caption(encoding)]

Why: ``import torch`` alone costs a new ``capsight video`` process about 1.5 s of CPU, more
than encoding and captioning a 70-second clip. ONNX Runtime imports in 0.1 s and runs the image
encoder about 20% faster on one core. The graphs are exported from capsight's own torch modules
the first time they are needed (``capsight.ort.export``, a few seconds, torch imported once) and
cached (``capsight.ort.store``); the torch path stays the reference and the fallback.

``CAPSIGHT_RUNTIME`` chooses: ``auto`` (default: ONNX Runtime where it is installed and runs the
chosen models: EfficientNet-Lite, a Show, Attend and Tell checkpoint, MiniLM or word-mean), ``torch``
(never), ``onnx`` (always; an error when it cannot).
"""
