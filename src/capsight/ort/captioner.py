"""Show, Attend and Tell on ONNX Runtime: encoder grids -> captions, beam search in NumPy.

    >>> captioner = OrtCaptioner.load(Path("src/capsight/models/show-attend-tell"))
    >>> [c.text for c in captioner.caption(encoding)]        # encoding: ArrayEncoding
    ['a black dog is running through the grass', ...]

The decoder's ``start`` and ``step`` run as two ONNX graphs exported from the checkpoint
(``capsight.ort.export``); between them this module runs greedy decoding or beam search the way
``capsight.captioning.decoding`` does on torch: the same rules (``capsight.captioning.rules``:
no ``<unk>``, no repeated trigram or word, no ending mid-phrase), the same scores (summed
log-probability; ranked by it over ``length ** length_penalty``). It decodes in float32, where
the torch path uses bfloat16 on CPUs that compute it natively, so a near tie can now and then
go the other way. Sampling and several captions per photo stay on the torch path.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from capsight.captioning.endings import Endings
from capsight.captioning.options import DecodingOptions, stored_decoding
from capsight.captioning.rules import apply_history_bans, ban_specials, function_word_ids
from capsight.captioning.vocabulary import BOS_ID, EOS_ID, PAD_ID, UNK_ID, Vocabulary
from capsight.errors import ModelNotFound
from capsight.ort.store import open_graphs

CHECKPOINT_FILES = ("model.safetensors", "config.json", "vocab.json")


@dataclass
class Caption:
    text: str
    score: float  # mean log-probability per emitted token (<eos> included)


def supported(folder: Path) -> dict | None:
    """The checkpoint's config when this module can run it (one Show, Attend and Tell decoder
    that reads the shared encoder's grid: no fine-tuned blocks, no encoder of its own), else
    None."""
    try:
        raw = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return None
    if not all((folder / name).is_file() for name in CHECKPOINT_FILES):
        return None
    if (
        raw.get("architecture") != "show-attend-tell"
        or raw.get("fine_tune_blocks")
        or raw.get("encoder_weights")
    ):
        return None
    return raw


def captioner_graphs(folder: Path) -> tuple[list[str], list[Path]]:
    """The graph names of the checkpoint in ``folder`` and the files they are exported from."""
    return ["show-attend-tell-start", "show-attend-tell-step"], [
        folder / f for f in CHECKPOINT_FILES
    ]


class OrtCaptioner:
    bos_id, eos_id, pad_id, unk_id = BOS_ID, EOS_ID, PAD_ID, UNK_ID

    def __init__(self, name: str, folder: Path, start_session, step_session) -> None:
        raw = supported(folder)
        if raw is None:
            raise ModelNotFound(f"{folder}: not a show-attend-tell checkpoint ONNX Runtime can run")
        self.name = name
        self.encoder_name = raw.get("encoder", "efficientnet-lite0")
        self.vocab = Vocabulary.load(folder / "vocab.json")
        self.endings = Endings.load(folder)
        self.function_ids = function_word_ids(self.vocab.itos)
        self.default_decoding = stored_decoding(raw.get("decoding", {}), str(folder))
        self._start, self._step = start_session, step_session

    @classmethod
    def load(
        cls,
        folder: Path,
        name: str = "show-attend-tell",
        report: Callable[[str], None] | None = None,
    ) -> OrtCaptioner:
        def build(out: list[Path]) -> None:
            from capsight.ort.export import export_show_attend_tell

            export_show_attend_tell(folder, out[0], out[1])

        return cls(name, folder, *open_graphs(*captioner_graphs(folder), build, report))

    @staticmethod
    def handles(options: DecodingOptions) -> bool:
        """Whether this module decodes ``options`` (greedy, or beam search for one caption)."""
        return options.method in ("greedy", "beam") and options.num_captions == 1

    def caption(self, encoding, decoding: DecodingOptions | None = None) -> list[Caption]:
        options = decoding.over(self.default_decoding) if decoding else self.default_decoding
        if not self.handles(options):
            raise ModelNotFound(
                f"ONNX Runtime decodes greedy and single beam search, not {options.method}"
            )
        if len(encoding) == 0:
            return []
        feats, keys, h, c = self._start.run(None, {"grid": encoding.grid})
        width = 1 if options.method == "greedy" else options.beam_width
        seqs, scores = self._beam_search(feats, keys, h, c, width, options)
        out = []
        for seq, score in zip(seqs, scores, strict=True):
            words = seq[: seq.index(EOS_ID)] if EOS_ID in seq else seq
            steps = max(min(len(seq), len(words) + 1), 1)
            out.append(Caption(" ".join(self.vocab.decode(words)), score / steps))
        return out

    def _beam_search(self, feats, keys, h, c, width: int, options: DecodingOptions):
        """The best sequence and its summed log-probability per image; ``width`` 1 is greedy."""
        batch = feats.shape[0]
        feats, keys = np.repeat(feats, width, 0), np.repeat(keys, width, 0)  # (B*W, P, F|A)
        h, c = np.repeat(h, width, 0), np.repeat(c, width, 0)  # (B*W, H)
        tokens = np.full(batch * width, BOS_ID, np.int64)
        scores = np.full((batch, width), -np.inf, np.float32)
        scores[:, 0] = 0.0  # all beams start identical; keep one alive
        done = np.zeros(batch * width, bool)
        seqs: list[list[int]] = [[] for _ in range(batch * width)]
        rows = np.arange(batch)[:, None] * width
        for t in range(options.max_length):
            last = t == options.max_length - 1
            # Only rows that can still matter run the step: not finished, and alive (at the first
            # word only the first beam of each image is); the others' results are never read.
            live = np.flatnonzero(~done & np.isfinite(scores.reshape(-1)))  # (L,)
            if len(live) == len(tokens):
                feed = {"tokens": tokens, "h": h, "c": c, "feats": feats, "keys": keys}
                logp, h, c, _ = self._step.run(None, feed)  # (B*W, V), (B*W, H) x 2, (B*W, P)
            else:
                feed = {
                    "tokens": tokens[live],
                    "h": h[live],
                    "c": c[live],
                    "feats": feats[live],
                    "keys": keys[live],
                }
                # (L, V), (L, H) x 2, ...
                live_logp, h[live], c[live], _ = self._step.run(None, feed)
                logp = np.full((len(tokens), live_logp.shape[1]), -np.inf, np.float32)  # (B*W, V)
                logp[live] = live_logp
            logp = apply_history_bans(self, ban_specials(self, logp), seqs, options, last)
            if last:  # force every open beam to end
                eos = np.maximum(logp[:, EOS_ID], -1e4)
                logp = np.full_like(logp, -np.inf)
                logp[:, EOS_ID] = eos
            logp[done] = -np.inf  # a finished beam only extends with free padding
            logp[done, PAD_ID] = 0.0
            vocab = logp.shape[1]
            total = (scores.reshape(-1, 1) + logp).reshape(batch, -1)  # (B, W*V)
            flat = np.argpartition(-total, width - 1, axis=1)[:, :width]  # (B, W) unordered
            best = np.take_along_axis(total, flat, 1)
            order = np.argsort(-best, axis=1, kind="stable")
            flat, best = np.take_along_axis(flat, order, 1), np.take_along_axis(best, order, 1)
            source = (flat // vocab + rows).reshape(-1)  # (B*W,) row each new beam continues
            words = (flat % vocab).reshape(-1)  # (B*W,)
            h, c = h[source], c[source]  # features and keys belong to the image: never reordered
            was_done = done[source]
            seqs = [
                seqs[s] + ([] if was_done[i] else [int(words[i])]) for i, s in enumerate(source)
            ]
            done = was_done | (words == EOS_ID)
            scores = best
            tokens = np.where(done, EOS_ID, words)
            if done.all():
                break
        lengths = np.array([max(len(s), 1) for s in seqs], np.float32).reshape(batch, width)
        ranked = scores / lengths**options.length_penalty
        pick = ranked.argmax(axis=1)  # (B,)
        return [seqs[b * width + j] for b, j in enumerate(pick)], [
            float(scores[b, j]) for b, j in enumerate(pick)
        ]
