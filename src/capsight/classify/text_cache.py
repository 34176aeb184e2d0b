"""Sentence embeddings of class prompts, cached on disk so each prompt is embedded only once.

    >>> vectors = embed_prompts(["cat", "dog"], ("a photo of a {}.",))   # (2, 384) unit rows

Loading the text embedder (torch and MiniLM's 90 MB of weights) costs about a second; a class
list seen before is read back from ``$CAPSIGHT_CACHE/classify/texts.sqlite3`` (default
``~/.cache/capsight``) without loading it, one vector per prompt text (the latest 100,000
texts at most: the oldest go first), and the
ImageNet side for the default templates ships precomputed (``data/zero_shot``), so a repeated
``capsight classify`` starts in well under the text embedder's load time.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence
from contextlib import closing
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from capsight.cache_root import cache_root
from capsight.classify.templates import fill_template
from capsight.progress import ProgressCallback

EMBEDDER = "minilm"


def cache_dir() -> Path:
    return cache_root() / "classify"


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.where(norms == 0, 1, norms)).astype(np.float32)


CHUNK = 1024  # texts embedded between two progress reports


def embed_texts(texts: list[str], progress: ProgressCallback | None = None) -> np.ndarray:
    """Raw sentence embeddings (N, 384), each text read from the on-disk store when it was
    embedded before (a class list with one name added embeds that name alone).

    Vectors are kept, and returned, at float16 precision, so a list scores the same on its
    first run as on later ones. ``progress`` hears how many new texts are embedded (10,000 new
    class names take minutes on 2 cores); texts all seen before report nothing."""
    if not texts:
        return np.zeros((0, 384), np.float32)
    unique = list(dict.fromkeys(texts))
    found = _stored(unique)
    missing = [text for text in unique if text not in found]
    if missing:
        from capsight.text.embedders import create_text_embedder

        embedder, parts = create_text_embedder(EMBEDDER), []
        for start in range(0, len(missing), CHUNK):
            if progress is not None:
                progress(start / len(missing), f"embedding {len(missing):,} class prompts")
            parts.append(embedder.embed(missing[start : start + CHUNK], batch_size=128))  # (n, 384)
        if progress is not None:
            progress(1.0, f"embedding {len(missing):,} class prompts")
        new = np.concatenate(parts).astype(np.float16)  # (M, 384)
        _store(dict(zip(missing, new, strict=True)))
        found.update(zip(missing, new.astype(np.float32), strict=True))
    return np.stack([found[text] for text in texts])  # (N, 384)


STORE = "texts.sqlite3"  # text key -> float16 vector, in cache_dir()
# Texts kept at most (~0.8 KB each: ~80 MB): a server's clients may send any class names.
MAX_STORED = 100_000
_QUERY_CHUNK = 500  # keys per SELECT (SQLite allows 999 parameters on old builds)


def _key(text: str) -> str:
    return hashlib.sha1(f"{EMBEDDER}\n{text}".encode()).hexdigest()[:20]


def _stored(texts: list[str]) -> dict[str, np.ndarray]:
    """The texts of ``texts`` already in the store, with their vectors (float32)."""
    path = cache_dir() / STORE
    if not path.is_file():
        return {}
    by_key = {_key(text): text for text in texts}
    keys, found = list(by_key), {}
    try:
        with closing(sqlite3.connect(path, timeout=30)) as db:
            for start in range(0, len(keys), _QUERY_CHUNK):
                chunk = keys[start : start + _QUERY_CHUNK]
                marks = ",".join("?" * len(chunk))
                for key, blob in db.execute(
                    f"SELECT key, vector FROM vectors WHERE key IN ({marks})", chunk
                ):
                    vector = np.frombuffer(blob, np.float16)
                    if vector.shape == (384,):  # a damaged row is embedded again
                        found[by_key[key]] = vector.astype(np.float32)
    except sqlite3.Error:
        return {}  # a damaged store costs only speed
    return found


def _store(vectors: dict[str, np.ndarray]) -> None:
    """Add float16 ``vectors`` to the store; a read-only or damaged one only costs speed."""
    path = cache_dir() / STORE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(path, timeout=30)) as db, db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vector BLOB NOT NULL)"
            )
            db.executemany(
                "INSERT OR REPLACE INTO vectors VALUES (?, ?)",
                [
                    (_key(text), vector.astype(np.float16).tobytes())
                    for text, vector in vectors.items()
                ],
            )
            (rows,) = db.execute("SELECT COUNT(*) FROM vectors").fetchone()
            if rows > MAX_STORED:  # the first stored go first, down to 90% of the bound
                db.execute("DELETE FROM vectors WHERE rowid IN (SELECT rowid FROM vectors "
                           "ORDER BY rowid LIMIT ?)", (rows - MAX_STORED * 9 // 10,))  # fmt: skip
    except (OSError, sqlite3.Error):
        pass


def embed_prompts(
    names: Sequence[str], templates: Sequence[str], progress: ProgressCallback | None = None
) -> np.ndarray:
    """Each name's prompt ensemble: the renormalised mean of its templated embeddings (N, 384)."""
    texts = [fill_template(t, name) for name in names for t in templates]
    vectors = embed_texts(texts, progress).reshape(len(names), len(templates), -1)  # (N, T, 384)
    return _unit(_unit(vectors).mean(axis=1))


def embed_synonym_prompts(
    synonyms: Sequence[Sequence[str]], templates: Sequence[str]
) -> np.ndarray:
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
