"""Caption tokenization for scoring, done the way pycocoevalcap does it.

    >>> ptb_tokenize(["A dog's toy, isn't it?"])      # Stanford PTBTokenizer, one Java process
    ["a dog 's toy is n't it"]
    >>> python_tokenize("A dog's toy, isn't it?")    # pure-Python approximation, no Java
    "a dog 's toy is n't it"

BLEU, METEOR, ROUGE-L and CIDEr are computed on lower-cased Penn Treebank tokens with
punctuation removed. ``ptb_tokenize`` runs the Stanford tokenizer jar that ships inside
pycocoevalcap (so numbers match published ones) but feeds it through stdin, so nothing is written
into the installed package. ``python_tokenize`` approximates it for machines without Java and
for the fast validation path; on the 40k Flickr8k captions it gives the same tokens for nearly
every caption (see docs/captioning_benchmarks.md).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

from capsight.errors import CapsightError, MissingDependency

# pycocoevalcap's list. The tokenizer runs with -lowerCase, so "-lrb-" never equals "-LRB-" and
# bracket tokens survive in the reference implementation; the Python tokenizer keeps that quirk.
PUNCTUATIONS = frozenset(
    ["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--",
     "...", ";"]
)  # fmt: skip

_JAR_NAME = "stanford-corenlp-3.4.1.jar"


def _pycocoevalcap_dir() -> Path:
    try:
        from pycocoevalcap.tokenizer import ptbtokenizer
    except ImportError:
        raise MissingDependency(
            "caption scoring needs pycocoevalcap: pip install 'capsight[train]'"
        ) from None
    return Path(ptbtokenizer.__file__).resolve().parent.parent


def tokenizer_jar() -> Path:
    return _pycocoevalcap_dir() / "tokenizer" / _JAR_NAME


@lru_cache(maxsize=1)
def java_available() -> bool:
    """True when a working ``java`` is on PATH (checked once per process)."""
    java = shutil.which("java")
    if java is None:
        return False
    try:
        done = subprocess.run([java, "-version"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _one_line(text: str) -> str:
    # Any line break (including \u2028 and friends) would shift every following caption.
    return " ".join(text.splitlines()).strip()


def ptb_tokenize(sentences: list[str]) -> list[str]:
    """Lower-cased PTB tokens joined by spaces, punctuation removed; one string per sentence."""
    if not sentences:
        return []
    java = shutil.which("java")
    if java is None:
        raise MissingDependency(
            "the PTB tokenizer needs Java: install a JRE (apt install default-jre)"
        )
    cmd = [java, "-cp", str(tokenizer_jar()), "edu.stanford.nlp.process.PTBTokenizer",
           "-preserveLines", "-lowerCase", "-encoding", "utf-8"]  # fmt: skip
    text = "\n".join(_one_line(s) for s in sentences) + "\n"
    done = subprocess.run(cmd, input=text.encode("utf-8"), capture_output=True, timeout=600)
    lines = done.stdout.decode("utf-8").split("\n")
    if done.returncode != 0 or len(lines) < len(sentences):
        raise CapsightError(
            f"the Java PTB tokenizer failed (exit {done.returncode}): "
            f"{done.stderr.decode(errors='replace').strip()[:200]}; pass use_java=False to skip it"
        )
    return [
        " ".join(w for w in line.rstrip().split(" ") if w and w not in PUNCTUATIONS)
        for line in lines[: len(sentences)]
    ]


_BRACKETS = {"(": " -lrb- ", ")": " -rrb- ", "[": " -lsb- ", "]": " -rsb- ", "{": " -lcb- ",
             "}": " -rcb- "}  # fmt: skip
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr st jr sr vs etc no mt ft inc co corp ltd jan feb mar apr jun jul aug sep sept "
    "oct nov dec".split()
)
_SYMBOLS = re.compile(r"([,;!?%$#*&^~=+|])")  # not <> @: PTB keeps "<unk>", "@home"
_DASHES = re.compile(r"--+")
_DOTS = re.compile(r"\.\.+")  # PTB makes "table.." -> "table" + punctuation
_CANNOT = re.compile(r"\bcannot\b")
_COLON = re.compile(r":(?!\d)|(?<!\d):")
_CONTRACTION = re.compile(r"(?<=\w)(n't|'s|'m|'re|'ve|'ll|'d)\b")
_QUOTES = re.compile(r"(?<!\w)'(?!(?:s|m|re|ve|ll|d)\b)|'(?!\w)")
_EDGE_HYPHENS = re.compile(r"(?<!\S)-(?=\w)|(?<=\w)-(?!\S)")


def _split_period(word: str) -> list[str]:
    if not word.endswith(".") or word == ".":
        return [word]
    stem = word[:-1]
    # "u.s.a.", "u." and known abbreviations keep their period; PTB drops it only at sentence end,
    # and it is removed as punctuation there anyway.
    if "." in stem or stem in _ABBREVIATIONS or (len(stem) == 1 and stem.isalpha()):
        return [word]
    return [stem, "."]


def python_tokenize(text: str) -> str:
    """Approximate ``ptb_tokenize`` for one caption without Java."""
    text = _one_line(text).lower().replace('"', " ")
    text = _DASHES.sub(" -- ", _DOTS.sub(" ... ", text))
    text = _SYMBOLS.sub(r" \1 ", text)
    text = _COLON.sub(" : ", text)
    text = _CONTRACTION.sub(r" \1", text)
    text = _QUOTES.sub(" ' ", text)
    text = _EDGE_HYPHENS.sub(" - ", text)
    text = _CANNOT.sub("can not", text)
    for bracket, name in _BRACKETS.items():  # after the hyphen rule: "-lrb-" has edge hyphens
        text = text.replace(bracket, name)
    words = [part for word in text.split() for part in _split_period(word)]
    return " ".join(w for w in words if w not in PUNCTUATIONS)
