"""Fixtures every test package may use; packages add their own in tests/<pkg>/conftest.py.

    def test_cat(encoder, photo):
        probs = encoder.encode([photo("chelsea")]).probs  # (1, 1000)

    @pytest.mark.data
    def test_on_real_photos(shared_data):
        labels = shared_data / "labelled" / "labels.json"   # skipped when ../shared/data is absent

- ``shared_data``: Path to the evaluation data beside the repo (``<repo>/../shared/data``); the
  test is skipped when it is absent, and tests using it get the ``data`` marker automatically.
- ``encoder``: one EfficientNet-Lite0 ``ImageEncoder`` for the whole session.
- ``photo``: ``photo(name)`` -> a fresh RGB copy of a scikit-image sample photo (see PHOTOS).

The ONNX graphs the video pipeline exports (capsight.ort) go to a temporary folder of the test
session, not the user's ~/.cache, and are exported once per session. The video decoder never
forks from the test process (see ``_decoder_never_forks_here``).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
TEST_CACHE = tempfile.mkdtemp(prefix="capsight-test-cache-")
os.environ["CAPSIGHT_CACHE"] = TEST_CACHE
# ~130 MB of ONNX graphs a run: left behind, a few hundred runs filled this machine's disk.
atexit.register(shutil.rmtree, TEST_CACHE, ignore_errors=True)
SHARED_DATA = REPO.parent / "shared" / "data"

# scikit-image sample photos and what is in them (ImageNet indices where one class fits).
PHOTOS = {
    "chelsea": "a tabby cat (ImageNet 281-285 are cats)",
    "coffee": "a cup of espresso on a saucer (967 espresso, 968 cup)",
    "astronaut": "a portrait of an astronaut in front of a flag",
    "rocket": "a rocket on its launch pad",
}


@pytest.fixture(autouse=True)
def _decoder_never_forks_here(monkeypatch):
    """The video decoder forks only from a process with one thread and no torch
    (``novelty.frames._can_fork``); this one has torch's thread pools and threads earlier tests
    left, and a fork from it can hang for ever on a lock one of them held. So here the decoder
    child is always ``python -m``; tests/novelty/forked_decoder.py tests the fork in a fresh
    interpreter."""
    from capsight.novelty import frames

    monkeypatch.setattr(frames, "_can_fork", lambda: False)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``<repo>/../shared/data``; skips the test when that folder is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"evaluation data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def encoder():
    """The default ImageEncoder (EfficientNet-Lite0), loaded once per session."""
    from capsight.vision.encoder import ImageEncoder

    return ImageEncoder()


@cache
def _photo_array(name: str) -> np.ndarray:
    data = pytest.importorskip("skimage.data")
    return np.asarray(getattr(data, name)())  # (H, W, 3) uint8


@pytest.fixture(scope="session")
def photo() -> Callable[[str], Image.Image]:
    """``photo("chelsea")`` -> a new RGB PIL image of that scikit-image sample each call."""

    def load(name: str) -> Image.Image:
        if name not in PHOTOS:
            raise KeyError(f"unknown sample photo {name!r}; choose one of {', '.join(PHOTOS)}")
        return Image.fromarray(_photo_array(name)).convert("RGB")

    return load


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that use ``shared_data`` are ``data`` tests, so ``-m "not data"`` deselects them."""
    for item in items:
        if "shared_data" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.data)


@pytest.fixture
def tiny_gpt2(tmp_path) -> Callable[[list[str]], Path]:
    """``tiny_gpt2(words)`` -> a Hugging Face GPT-2 folder (``save_pretrained``'s layout): a
    one-layer, 16-wide GPT-2 and a word-level tokenizer whose ids are <pad> 0, <|endoftext|> 1,
    [UNK] 2 (or ``specials`` in their order), then ``words``: what a user's GPT-2 download looks
    like to capsight, offline."""
    transformers = pytest.importorskip("transformers")
    tokenizers = pytest.importorskip("tokenizers")

    def make(
        words: list[str], specials=("<pad>", "<|endoftext|>", "[UNK]"), n_positions=160
    ) -> Path:
        table = [*specials, *words]
        core = tokenizers.Tokenizer(
            tokenizers.models.WordLevel({w: i for i, w in enumerate(table)}, unk_token="[UNK]")
        )
        core.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
        tokenizer = transformers.PreTrainedTokenizerFast(
            tokenizer_object=core, eos_token="<|endoftext|>", bos_token="<|endoftext|>",
            pad_token="<pad>", unk_token="[UNK]",
        )  # fmt: skip
        config = transformers.GPT2Config(
            vocab_size=len(table), n_embd=16, n_layer=1, n_head=2, n_positions=n_positions,
            bos_token_id=table.index("<|endoftext|>"), eos_token_id=table.index("<|endoftext|>"),
        )  # fmt: skip
        folder = tmp_path / "gpt2"
        transformers.GPT2LMHeadModel(config).save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        return folder

    return make
