"""The command line of ``python -m capsight.captioning.endings``
(the library module hands over to it, and parses no argv itself)."""

from __future__ import annotations

from capsight._cli.tools import tool_parser
from capsight.captioning.endings import FILE, Endings


def main(argv: list[str] | None = None) -> None:
    from capsight.captioning.checkpoint import load_vocabulary
    from capsight.captioning.vocabulary import tokenize
    from capsight.errors import CapsightError
    from capsight.training.readers import read_corpus

    parser = tool_parser(
        "capsight.captioning.endings", "Learn a checkpoint's endings.json from a corpus."
    )
    parser.add_argument("data", help="the training corpus (its train split is used)")
    parser.add_argument("checkpoint", help="checkpoint folder; endings.json is written there")
    args = parser.parse_args(argv)
    vocab = load_vocabulary(args.checkpoint)
    if vocab is None:
        parser.error(f"{args.checkpoint}: no vocab.json")
    try:
        images = read_corpus(args.data).split("train")
    except CapsightError as exc:  # a corpus the user named: one line, not a traceback
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    endings = Endings.learn(vocab.encode(tokenize(c)) for im in images for c in im.captions)
    endings.save(args.checkpoint)
    print(
        f"{args.checkpoint}/{FILE}: {len(endings.final_words)} final words, "
        f"{len(endings.final_pairs)} final word pairs, {len(endings.first_words or ())} first words"
    )
