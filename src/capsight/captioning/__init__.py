"""Captioners: the interface and registry (``base``), the trained decoders and how they decode."""

from pathlib import Path

# The shipped checkpoints, one folder per captioner name (``show-attend-tell``, ...).
MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
