"""Sentence embeddings of class prompts, cached on disk so a class list is embedded only once.

    >>> vectors = embed_prompts(["cat", "dog"], ("a photo of a {}.",))   # (2, 384) unit rows

Loading the text embedder (torch and MiniLM's 90 MB of weights) costs about a second; a class
list seen before is read back from ``$CAPSIGHT_CACHE`` (default ``~/.cache/capsight``) without loading it, and the
ImageNet side for the default templates ships precomputed (``data/zero_shot``), so a repeated
``capsight classify`` starts in well under the text embedder's load time.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from capsight.classify.templates import fill_template
from capsight.progress import ProgressCallback

EMBEDDER = "minilm"


def cache_dir() -> Path:
    return Path(os.environ.get("CAPSIGHT_CACHE", Path.home() / ".cache" / "capsight")) / "classify"


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.where(norms == 0, 1, norms)).astype(np.float32)


CHUNK = 1024  # texts embedded between two progress reports


def embed_texts(texts: list[str], progress: ProgressCallback | None = None) -> np.ndarray:
    """Raw sentence embeddings (N, 384), through the on-disk cache keyed by the exact texts.

    ``progress`` hears how many of the texts are embedded (10,000 new class names take minutes
    on 2 cores); a cached list reports nothing."""
    if not texts:
        return np.zeros((0, 384), np.float32)
    key = hashlib.sha1(("\n".join([EMBEDDER, *texts])).encode("utf-8")).hexdigest()[:20]
    path = cache_dir() / f"{key}.npy"
    if path.is_file():
        try:
            vectors = np.load(path)
            if vectors.shape == (len(texts), 384):
                return vectors.astype(np.float32)
        except (OSError, ValueError):
            pass  # a damaged cache file is recomputed below
    from capsight.text.embedders import create_text_embedder

    embedder, parts = create_text_embedder(EMBEDDER), []
    for start in range(0, len(texts), CHUNK):
        if progress is not None:
            progress(start / len(texts), f"embedding {len(texts):,} class prompts")
        parts.append(embedder.embed(texts[start : start + CHUNK], batch_size=128))  # (n, 384)
    vectors = np.concatenate(parts)  # (N, 384)
    if progress is not None:
        progress(1.0, f"embedding {len(texts):,} class prompts")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, vectors.astype(np.float16))
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home only costs speed
    return vectors


def embed_prompts(
    names: Sequence[str], templates: Sequence[str], progress: ProgressCallback | None = None
) -> np.ndarray:
    """Each name's prompt ensemble: the renormalised mean of its templated embeddings (N, 384)."""
    texts = [fill_template(t, name) for name in names for t in templates]
    vectors = embed_texts(texts, progress).reshape(len(names), len(templates), -1)  # (N, T, 384)
    return _unit(_unit(vectors).mean(axis=1))


def embed_synonym_prompts(synonyms: Sequence[Sequence[str]], templates: Sequence[str]) -> np.ndarray:
    """Like embed_prompts, but each row averages over several names (an ImageNet class's synonyms)."""
    flat = [name for names in synonyms for name in names]
    per_name = embed_prompts(flat, templates)  # (sum of synonyms, 384)
    rows, start = [], 0
    for names in synonyms:
        rows.append(per_name[start : start + len(names)].mean(axis=0))
        start += len(names)
    return _unit(np.stack(rows))


@lru_cache(maxsize=4)
def imagenet_prompt_embeddings(templates: tuple[str, ...]) -> np.ndarray:
    """(1000, 384) embeddings of the ImageNet classes' synonyms under ``templates``.

    The default template set ships precomputed; any other set is computed once and cached.
    """
    from capsight.classify.templates import OFFLINE_TEMPLATES
    from capsight.vision.imagenet_classes import imagenet_synonyms

    if templates == OFFLINE_TEMPLATES:
        shipped = resources.files("capsight.data").joinpath("zero_shot/imagenet_prompts.npy")
        if shipped.is_file():
            with shipped.open("rb") as fh:
                return np.load(fh).astype(np.float32)
    return embed_synonym_prompts(imagenet_synonyms(), templates)
