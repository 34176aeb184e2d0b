"""The command line of ``python -m capsight.training.features``
(the library module hands over to it, and parses no argv itself)."""

from __future__ import annotations

import sys

from capsight._cli.tools import tool_parser
from capsight.errors import CapsightError
from capsight.training.features import FeatureCache, build_encoder, default_cache_dir


def main(argv: list[str] | None = None) -> None:
    """Encode a dataset's photos once into the feature cache that capsight train and cached_eval
    read: any format train reads, the photos with a file (as train keeps them), so a run finds them."""

    from capsight.training.readers import read_corpus
    from capsight.training.train import TrainConfig, with_photo_files

    parser = tool_parser("capsight.training.features", main.__doc__)
    parser.add_argument("data", help="the dataset, in any format capsight train reads")
    parser.add_argument(
        "--images",
        default="",
        help="photo folder, when the caption file does not say where its photos are",
    )
    parser.add_argument(
        "--encoder", default="efficientnet-lite0", help="image encoder (default efficientnet-lite0)"
    )
    parser.add_argument(
        "--encoder-weights",
        default="",
        help="a captioner's own fine-tuned encoder (its encoder.safetensors)",
    )
    parser.add_argument(
        "--resolution",
        type=int,
        default=0,
        help="square input side in pixels (default 0: the encoder's own)",
    )
    parser.add_argument(
        "--flip", action="store_true", help="encode the mirrored photos (train --flip)"
    )
    parser.add_argument(
        "--cache-dir", default=str(default_cache_dir()), help=f"default {default_cache_dir()}"
    )
    args = parser.parse_args(argv)
    try:
        # (checks the encoder and the resolution as capsight train does)
        TrainConfig(data=args.data, out="", encoder=args.encoder, resolution=args.resolution)
        corpus = with_photo_files(read_corpus(args.data, args.images or None), args.data)
        for message in corpus.notes:
            print(f"{parser.prog}: note: {message}", file=sys.stderr)
        encoder = build_encoder(args.encoder, args.resolution or None, args.encoder_weights)
        cache = FeatureCache.build(corpus, encoder, args.cache_dir, flip=args.flip)
    except KeyboardInterrupt:
        print(
            "interrupted; run the same command again to go on from the last batch", file=sys.stderr
        )
        raise SystemExit(130) from None
    except (CapsightError, OSError) as error:
        from capsight._cli.main import file_refusal

        said = file_refusal(error) if isinstance(error, OSError) else None
        parser.exit(2, f"{parser.prog}: error: {said or error}\n")
    print(cache.folder, cache.grid.shape)
