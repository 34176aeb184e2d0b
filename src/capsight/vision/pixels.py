"""What EfficientNet-Lite sees: photos resized whole to its square input, scaled as it was trained.

    >>> normalised_pixels([photo], side=224).shape      # float32 NumPy, no torch import
    (1, 3, 224, 224)

The whole frame is resized (not cropped), so nothing at the edges of a video frame is lost;
Flickr8k training photos were squashed the same way. Pixels become ``(x - 127) / 128``, the Lite
checkpoints' (TensorFlow lite) recipe. Both the torch encoder (``vision.encoder``) and the ONNX
Runtime one (``ort.encoder``) read this, so the two see the same numbers.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

PIXEL_MEAN = 127.0
PIXEL_STD = 128.0


def normalised_pixels(images: list[Image.Image], side: int) -> np.ndarray:
    """RGB PIL images -> normalised batch (B, 3, side, side) float32."""
    arrays = [
        np.asarray(img.convert("RGB").resize((side, side), Image.BILINEAR, reducing_gap=2.0))
        for img in images
    ]
    batch = np.stack(arrays).transpose(0, 3, 1, 2).astype(np.float32)  # (B, 3, side, side)
    return (batch - PIXEL_MEAN) / PIXEL_STD
