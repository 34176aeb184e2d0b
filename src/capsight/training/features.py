"""Encoder feature cache: every photo of a corpus is encoded once, then reused by every run.

    >>> cache = FeatureCache.build(corpus, ImageEncoder(), "~/.cache/capsight/features", flip=True)
    >>> cache.grid.shape, cache.grid.dtype      # memory-mapped fp16
    ((7966, 49, 1280), dtype('float16'))
    >>> rows = cache.rows(["1000268201_693b08cb0e.jpg"])

The cache lives in ``<cache_dir>/<corpus>-<encoder>-<resolution>/`` as ``.npy`` files (grid,
pooled, probs, and hidden: the input of the encoder's last blocks, what a captioner with
fine-tuned top blocks trains on) plus ``meta.json``; ``flip=True`` encodes the horizontally mirrored photos into
a sibling folder ending in ``-flip`` (feature augmentation for training). Extraction writes in chunks and records its progress, so an interrupted run
resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from capsight.cache_root import cache_root
from capsight.errors import CapsightError, ImageLoadError, InputNotFound
from capsight.io.images import load_image
from capsight.training.datasets import CaptionCorpus
from capsight.training.log_bar import progress_bar
from capsight.vision.efficientnet_lite import FEATURE_DIM
from capsight.vision.encoder import ImageEncoder


def default_cache_dir() -> Path:
    """Where encoder features are cached unless a command says: read when asked, so that
    ``$CAPSIGHT_CACHE`` set after import counts."""
    return cache_root() / "features"


# How a missing or broken cache is made (a user who never built one had read "run the
# extraction again").
BUILD_IT = ("build it with `python -m capsight.training.features DATA` (capsight train on the "
            "data builds it too)")  # fmt: skip


def _one_component(name: str) -> str:
    """A dataset's name as one folder name inside the cache: a Karpathy file's "dataset" field
    of "../../escaped" or "/tmp/x" had put its features outside ``--cache-dir``."""
    safe = re.sub(r"[^\w.+-]+", "_", str(name)).strip("._") or "dataset"
    return safe[:100]


@dataclass
class FeatureCache:
    folder: Path
    keys: list[str]
    grid: np.ndarray  # (N, P, 1280) fp16, memory-mapped
    pooled: np.ndarray  # (N, 1280) fp16
    probs: np.ndarray  # (N, 1000) fp16
    grid_size: tuple[int, int]
    hidden: np.ndarray | None = None  # (N, C, h, w) fp16, C = 192 for Lite0; None in old caches
    # Photos that could not be read, {key: reason}: their rows hold a black photo's features,
    # and training leaves them out.
    unreadable: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.index = {k: i for i, k in enumerate(self.keys)}

    def rows(self, keys: list[str]) -> np.ndarray:
        return np.array([self.index[k] for k in keys], dtype=np.int64)

    def features(self, kind: str = "grid") -> np.ndarray:
        """The memory-mapped array a captioner reads: ``"grid"`` or ``"hidden"``."""
        if kind == "hidden":
            if self.hidden is None:
                raise CapsightError(f"{self.folder}: no hidden maps cached; {BUILD_IT}")
            return self.hidden
        return self.grid

    @staticmethod
    def folder_for(
        cache_dir: str | os.PathLike, corpus: str, encoder: str, resolution: int, flip: bool = False,
        weights: str = "",
    ) -> Path:  # fmt: skip
        """The cache of ``encoder``'s ImageNet weights, or of a fine-tuned encoder's ``weights``
        file (named by a digest of its bytes, so retrained weights never reuse stale features)."""
        suffix = ("-flip" if flip else "") + (f"-own{weights_digest(weights)}" if weights else "")
        return (
            Path(cache_dir).expanduser()
            / f"{_one_component(corpus)}-{encoder}-{resolution}{suffix}"
        )

    @classmethod
    def folder_of(
        cls, cache_dir: str | os.PathLike, corpus: CaptionCorpus, encoder: str, resolution: int,
        flip: bool = False, weights: str = "",
    ) -> Path:  # fmt: skip
        """Where ``corpus``'s features are, or go: the folder named by the dataset
        (``folder_for``), unless that holds features of other photos (another dataset of the
        same name, such as a subset in the Flickr8k layout; all or part of them): then a sibling
        also named by these photos' fingerprint, so that neither evicts the other."""
        plain = cls.folder_for(cache_dir, corpus.name, encoder, resolution, flip, weights)
        try:
            old = json.loads((plain / "meta.json").read_text())
            keys = sorted(corpus.images)
            fingerprint = photo_fingerprint(corpus, keys)
            ours = old["keys"] == keys and old.get("fingerprint", fingerprint) == fingerprint
            started = old["done"] > 0 or old.get("hidden_done", 0) > 0
        except (OSError, ValueError, KeyError, TypeError):
            return plain  # no cache there yet, or a damaged one: this run (re)builds it
        return plain if ours or not started else plain.with_name(f"{plain.name}-{fingerprint[:8]}")

    @classmethod
    def open(cls, folder: str | os.PathLike) -> FeatureCache:
        folder = Path(folder)
        meta_file = folder / "meta.json"
        if not meta_file.is_file():
            what = "not built yet" if not folder.exists() else "incomplete"
            raise CapsightError(f"{folder}: feature cache {what}; {BUILD_IT}")
        meta = _read_meta(meta_file)
        if meta is None:
            raise CapsightError(f"{folder}: feature cache damaged (meta.json); {BUILD_IT}")
        if meta["done"] < len(meta["keys"]):
            raise CapsightError(f"{folder}: feature cache incomplete; {BUILD_IT}")
        complete = meta.get("hidden_done", 0) >= len(meta["keys"])
        for name in ("grid", "pooled", "probs", *(["hidden"] if complete else [])):
            if _array_rows(folder / f"{name}.npy") != len(meta["keys"]):
                raise CapsightError(f"{folder}: feature cache damaged ({name}.npy is cut short or "
                                    f"not this cache's); {BUILD_IT}")  # fmt: skip
        return cls(
            folder,
            meta["keys"],
            np.load(folder / "grid.npy", mmap_mode="r"),
            np.load(folder / "pooled.npy", mmap_mode="r"),
            np.load(folder / "probs.npy", mmap_mode="r"),
            tuple(meta["grid_size"]),
            np.load(folder / "hidden.npy", mmap_mode="r") if complete else None,
            meta.get("unreadable", {}),
        )

    @classmethod
    def build(
        cls,
        corpus: CaptionCorpus,
        encoder: ImageEncoder,
        cache_dir: str | os.PathLike | None = None,  # None: default_cache_dir()
        flip: bool = False,
        batch_size: int = 32,
        progress: bool = True,
    ) -> FeatureCache:
        """Encode every photo of ``corpus`` (mirrored with ``flip``), resuming an interrupted run.

        A cache written before hidden maps were kept gets them added in one more pass."""
        cache_dir = default_cache_dir() if cache_dir is None else cache_dir
        folder = cls.folder_of(
            cache_dir, corpus, encoder.name, encoder.resolution, flip, encoder.weights
        )
        plain = cls.folder_for(
            cache_dir, corpus.name, encoder.name, encoder.resolution, flip, encoder.weights
        )
        if folder != plain and not folder.is_dir():
            print(f"{plain}: holds features of other photos named {corpus.name!r}, kept; these go "
                  f"to {folder.name} (delete a cache folder you no longer need)", file=sys.stderr)  # fmt: skip
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            # (the default cache is no flag the user gave: named by where it comes from)
            named = (
                "the feature cache (under $CAPSIGHT_CACHE, or ~/.cache/capsight; --cache-dir to "
                "choose another)"
                if Path(cache_dir) == default_cache_dir()
                else f"--cache-dir {cache_dir}"
            )
            raise CapsightError(
                f"{named}: cannot create {folder} ({error.strerror or error})"
            ) from None
        keys = sorted(corpus.images)
        meta_file = folder / "meta.json"
        side = encoder.resolution // 32 + (encoder.resolution % 32 > 0)
        fingerprint = photo_fingerprint(corpus, keys)
        meta = {"keys": keys, "done": 0, "hidden_done": 0, "flip": flip, "encoder": encoder.name,
                "resolution": encoder.resolution, "grid_size": [side, side],
                "fingerprint": fingerprint}  # fmt: skip
        old = _read_meta(meta_file) if meta_file.is_file() else None
        if old is not None:
            # The same photos: the same names and file sizes (caches older than the fingerprint
            # are trusted on their names).
            same = old["keys"] == keys and old.get("fingerprint", fingerprint) == fingerprint
            if same and old.get("flip") == flip:
                meta = {"hidden_done": 0, **old, "fingerprint": fingerprint}
            elif old.get("done"):
                print(f"{folder}: cached features of other photos; encoding these instead",
                      file=sys.stderr)  # fmt: skip
        # Written before any array is (re)created, so an interrupted or failed build never
        # leaves a stale meta.json vouching for emptied arrays.
        meta_file.write_text(json.dumps(meta))
        n, p = len(keys), side * side
        hidden_channels = encoder.net._blocks[encoder.net.top_start]._expand_conv.in_channels
        shapes = {"grid": (n, p, FEATURE_DIM), "pooled": (n, FEATURE_DIM), "probs": (n, 1000),
                  "hidden": (n, hidden_channels, side, side)}  # fmt: skip
        progress_key = {"grid": "done", "pooled": "done", "probs": "done", "hidden": "hidden_done"}
        damaged = [name for name, shape in shapes.items()
                   if meta[progress_key[name]] > 0 and _array_rows(folder / f"{name}.npy", shape) != n]  # fmt: skip
        # numpy would pad a cut-short file with zeros, and the run would learn from them
        if damaged:
            print(f"{folder}: {', '.join(f'{name}.npy' for name in damaged)} cut short or damaged; "
                  "encoding the photos again", file=sys.stderr)  # fmt: skip
            meta.update(done=0, hidden_done=0)
            meta_file.write_text(json.dumps(meta))
        arrays = {
            name: np.lib.format.open_memmap(
                folder / f"{name}.npy",
                "r+" if meta[progress_key[name]] > 0 else "w+",
                np.float16,
                shape,
            )
            for name, shape in shapes.items()
        }
        earlier = set(meta.get("unreadable", {}))  # (not the ones this run finds: just tried)
        first = min(meta["done"], meta["hidden_done"])
        if first < n and progress:  # where the disk goes (five small runs had left 137 MB)
            size = sum(np.prod(shape) for shape in shapes.values()) * 2  # float16
            print(f"{folder}: caching the encoder's features of {n:,} photos here ({size / 2**20:,.0f} "
                  "MB; later runs on these photos reuse them)", file=sys.stderr)  # fmt: skip
        # (nothing left to encode: no bar, which would read as if it had encoded them again)
        bar = progress_bar(
            total=n, initial=first, desc="encoding photos", disable=not progress or first >= n
        )
        for start in range(first, n, batch_size):
            chunk = keys[start : start + batch_size]
            images = []
            for key in chunk:  # one corrupt photo among thousands must not stop the run
                try:
                    images.append(load_image(corpus.images[key].path))
                except (ImageLoadError, InputNotFound) as error:  # truncated, empty, not an image
                    if not corpus.images[key].path.exists():
                        raise  # a missing file still fails: the dataset moved, say so
                    meta.setdefault("unreadable", {})[key] = str(error)
                    images.append(Image.new("RGB", (encoder.resolution, encoder.resolution)))
            if flip:
                images = [img.transpose(Image.FLIP_LEFT_RIGHT) for img in images]
            out = encoder.encode(images, batch_size=batch_size)
            end = start + len(chunk)
            values = {
                "grid": out.grid,
                "pooled": out.pooled,
                "probs": out.probs,
                "hidden": out.hidden,
            }
            for name, array in arrays.items():
                # (B, P, 1280), (B, 1280), (B, 1000), (B, C, h, w)
                if meta[progress_key[name]] < end:
                    array[start:end] = values[name].numpy().astype(np.float16)
                    array.flush()
            meta["done"] = max(meta["done"], end)
            meta["hidden_done"] = max(meta["hidden_done"], end)
            meta["grid_size"] = list(out.grid_size)
            meta_file.write_text(json.dumps(meta))
            bar.update(len(chunk))
        bar.close()
        if _encode_recovered(meta, earlier, corpus, encoder, arrays, flip, batch_size):
            meta_file.write_text(json.dumps(meta))
        return cls.open(folder)


def _encode_recovered(
    meta: dict,
    retry: set[str],
    corpus,
    encoder: ImageEncoder,
    arrays: dict,
    flip: bool,
    batch_size: int,
) -> bool:
    """Encode the photos an earlier run found unreadable (``retry``) that now read (the note's
    advice, "make the file readable", followed: they had stayed left out, their rows a black
    image's) into their rows of ``arrays``, ``batch_size`` at a time; True when any did, their
    ``meta["unreadable"]`` entries gone."""
    unreadable = meta.get("unreadable", {})
    row_of = {key: i for i, key in enumerate(meta["keys"])}
    keys = [k for k in sorted(retry) if k in unreadable and k in row_of and k in corpus.images]
    recovered = []
    for start in range(0, len(keys), batch_size):
        chunk, images = [], []
        for key in keys[start : start + batch_size]:
            try:
                image = load_image(corpus.images[key].path)
            except (ImageLoadError, InputNotFound):
                continue  # still unreadable: still left out
            chunk.append(key)
            images.append(image.transpose(Image.FLIP_LEFT_RIGHT) if flip else image)
        if not images:
            continue
        out = encoder.encode(images, batch_size=batch_size)
        values = {"grid": out.grid, "pooled": out.pooled, "probs": out.probs, "hidden": out.hidden}
        for name, array in arrays.items():
            for value, key in zip(values[name], chunk, strict=True):
                array[row_of[key]] = value.numpy().astype(np.float16)
            array.flush()
        recovered += chunk
    for key in recovered:
        del unreadable[key]
    return bool(recovered)


def _read_meta(path: Path) -> dict | None:
    """A cache's meta.json, or None when it is damaged (cut short, edited, not an object)."""
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if (
        not isinstance(meta, dict)
        or not isinstance(meta.get("keys"), list)
        or not isinstance(meta.get("done"), int)
    ):
        return None
    return meta


def _array_rows(path: Path, shape: tuple[int, ...] | None = None) -> int:
    """The rows of the float16 ``.npy`` at ``path`` when every byte its header promises is there
    (and its shape is ``shape``, when given), else -1: a copy cut short or a full disk leaves it
    short, which numpy would fill with zeros."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)  # fmt: skip
            found, fortran, dtype = read_header(f)
            data_start = f.tell()
        size = path.stat().st_size
    except (OSError, ValueError):
        return -1
    whole = size >= data_start + int(np.prod(found)) * dtype.itemsize
    if (
        not whole
        or fortran
        or dtype != np.float16
        or not found
        or (shape is not None and tuple(found) != tuple(shape))
    ):
        return -1
    return int(found[0])


def photo_fingerprint(corpus: CaptionCorpus, keys: list[str]) -> str:
    """A digest of each photo's name and file size: another set of photos under the same names
    (a different copy or version of a dataset) gets its own features, not these."""
    digest = hashlib.sha1()
    for key in keys:
        path = corpus.images[key].path
        size = path.stat().st_size if path.is_file() else -1
        digest.update(f"{key}\0{size}\n".encode())
    return digest.hexdigest()[:16]


def weights_digest(path: str) -> str:
    """12 hex digits of the SHA-1 of a weights file."""
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:12]


def member_cache(cache_dir, corpus: CaptionCorpus, data: str, encoder: str, resolution: int,
                 weights: str = "") -> FeatureCache:  # fmt: skip
    """The feature cache an ensemble member reads, or a one-line error naming the command that
    builds it."""
    try:
        return FeatureCache.open(
            FeatureCache.folder_of(cache_dir, corpus, encoder, resolution, weights=weights)
        )
    except (CapsightError, OSError) as error:
        own = f" --encoder-weights {weights}" if weights else ""
        raise CapsightError(f"{error} (cache the features first: python -m capsight.training.features "
                            f"{data} --encoder {encoder}{own})") from None  # fmt: skip


def refuse_own_encoder(raw: dict, folder) -> None:
    """Cached features come from the shared ImageNet encoder: refuse a checkpoint that reads its
    own fine-tuned one (``encoder_weights``, ``training.end_to_end``) instead of feeding it the
    wrong features."""
    if raw.get("encoder_weights"):
        raise CapsightError(
            f"{folder}: this captioner reads its own fine-tuned encoder, not the cached features; "
            "score it from photos (capsight eval) or train it on with capsight.training.end_to_end"
        )


def build_encoder(
    name: str = "efficientnet-lite0", resolution: int | None = None, weights: str = ""
) -> ImageEncoder:
    """An ImageEncoder, optionally at a non-native square input resolution or with a captioner's
    own fine-tuned ``weights``."""
    encoder = ImageEncoder(name, weights=weights)
    if resolution:
        encoder.resolution = resolution
    return encoder


if __name__ == "__main__":  # the tool itself lives in capsight._cli.tools.features
    from capsight._cli.tools.features import main

    raise SystemExit(main())
