"""The command line of ``capsight train`` (and ``python -m capsight.training.train``): one flag
per ``TrainConfig`` field, the MLflow run that tracks it, and the JSON line it ends with.

    $ capsight train ../shared/data/flickr8k --out runs/sat --epochs 7 --flip --scst-epochs 6

    >>> train_main(["../shared/data/flickr8k", "--out", "runs/sat", "--quiet"])  # 0 when it ran
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import re
import sys
from pathlib import Path

from capsight.errors import InvalidParameter, MissingDependency
from capsight.training.distributed import launch_rank, leave_process_group
from capsight.training.run_folder import (
    LOCK,
    holds_run,
    make_run_folder,
    read_trainer_state,
    run_folder_lock,
    settled_last,
)
from capsight.training.train import (
    CHANGEABLE_ON_RESUME,
    PATH_OPTIONS,
    TrainConfig,
    check_starting_point,
    note,
    option_text,
    read_json_or_empty,
    run_path,
    train,
    training_corpus,
)

# One line of --help per TrainConfig option (tests check that none is missing).
OPTION_HELP = {
    "images": "photo folder, for caption files that do not say where their photos are (Karpathy "
    "and COCO files, Conceptual Captions' fetch cache); default: the dataset's own layout",
    "encoder": "image encoder whose features the captioner reads",
    "resolution": "encoder input size in pixels; 0 = the encoder's native size",
    "flip": "also train on mirror-image features (their captions' left/right swapped)",
    "cache_dir": "where encoder features are cached (extracted once, reused)",
    "epochs": "cross-entropy (teacher forcing) epochs",
    "batch_images": "photos per step",
    "captions_per_image": "reference captions used per photo and step",
    "lr": "peak learning rate (AdamW)",
    "min_lr_ratio": "cosine decay from lr down to lr x this over the epochs",
    "warmup_steps": "linear learning-rate warm-up steps",
    "weight_decay": "AdamW weight decay",
    "grad_clip": "gradient norm clipping",
    "label_smoothing": "cross-entropy label smoothing",
    "attention_lambda": "weight of the doubly stochastic attention regulariser",
    "min_count": "words seen fewer times become <unk>",
    "max_caption_length": "training captions are cut to this many words",
    "patience": "stop a stage after this many epochs without a better validation CIDEr",
    "seed": "random seed for initial weights, batch order and sampling",
    "val_method": "decoding used for validation CIDEr: greedy or beam",
    "val_beam": "beam width for validation",
    "max_train_images": "use at most this many training photos; 0 = all (smoke tests)",
    "max_val_images": "use at most this many validation photos; 0 = all",
    "scst_epochs": "self-critical (CIDEr reward) epochs after cross-entropy; 0 = none",
    "scst_lr": "learning rate of the self-critical stage",
    "scst_samples": "sampled captions per photo in the self-critical stage",
    "scst_max_length": "longest sampled caption in the self-critical stage",
    "scst_top_k": "sample among the k likeliest words; 0 = the full distribution",
    "scst_end_token": "score sampled captions with their end word (fewer dangling endings)",
    "init_from": "start from this checkpoint folder's weights and vocabulary, or (with "
    "--architecture prefix-gpt2) from GPT-2 weights and tokenizer: a save_pretrained folder",
    "fine_tune_blocks": "also train the encoder's last N blocks and head (show-attend-tell)",
    "fine_tune_lr_ratio": "the fine-tuned encoder blocks' learning rate, as a multiple of lr",
}


class _DefaultsHelp(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except where there is none to show ("default: None")."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, "", []) or action.required:
            return action.help
        return super()._get_help_string(action)


def build_parser(
    parser_class: type[argparse.ArgumentParser] = argparse.ArgumentParser,
) -> argparse.ArgumentParser:
    parser = parser_class(
        allow_abbrev=False,  # `--captions 5` is no --captions-per-image (capsight._cli.parser)
        prog="capsight train",
        description="Train a captioner on cached encoder features.",
        formatter_class=_DefaultsHelp,
    )
    parser.add_argument(
        "data",
        help="caption dataset: a folder (captions.json + splits.json, or the Flickr8k text files), "
        "a Karpathy dataset_*.json, COCO captions_*.json, Flickr8k.token.txt or a Conceptual "
        "Captions .tsv (its photos fetched first by python -m capsight.training.readers."
        "conceptual_captions TSV DIR, then --images DIR); without train/val splits it is split "
        "by a hash of each photo's name",
    )
    parser.add_argument("--out", required=True, help="run folder: checkpoints, metrics.jsonl")
    parser.add_argument(
        "--architecture",
        default="show-attend-tell",
        choices=["show-attend-tell", "show-and-tell", "prefix-gpt2"],
        help="captioner to train",
    )
    parser.add_argument(
        "--model-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="architecture option, e.g. hidden_dim=512 or dropout=0.3 (show-and-tell also "
        "takes cell=gru and num_layers=2); a wrong key lists the architecture's options",
    )
    defaults = TrainConfig(data="", out="")
    for f in dataclasses.fields(TrainConfig):
        if f.name in ("data", "out", "architecture", "model", "resume", "progress"):
            continue
        flag = "--" + f.name.replace("_", "-")
        value = getattr(defaults, f.name)
        text = OPTION_HELP.get(f.name)
        if isinstance(value, bool):  # --flip and --no-flip: a resumed run keeps its own unless told
            parser.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=value, help=text
            )
        else:
            parser.add_argument(flag, type=type(value), default=value, help=text)
    parser.add_argument("--resume", action="store_true", help="continue from <out>/last")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    parser.add_argument("--no-track", action="store_true", help="do not log to MLflow")
    return parser


def _parse_option(text: str) -> tuple[str, object]:
    key, equals, value = text.partition("=")
    if not equals or not key:
        raise InvalidParameter(f"--model-option {text!r}: expected KEY=VALUE, e.g. hidden_dim=512")
    for cast in (int, float):
        try:
            return key, cast(value)
        except ValueError:
            pass
    if value.lower() in ("true", "false"):
        return key, value.lower() == "true"
    return key, value


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
              if hasattr(args, f.name) and f.name not in ("model", "progress")}  # fmt: skip
    return TrainConfig(
        **values, model=dict(_parse_option(o) for o in args.model_option), progress=not args.quiet
    )


# What a resumed run takes from its train_config.json when the command leaves it out.
KEPT_ON_RESUME = (*CHANGEABLE_ON_RESUME, "architecture", "encoder", "resolution", "images", "cache_dir",
                  "epochs", "scst_epochs", "min_count", "max_train_images", "fine_tune_blocks", "model",
                  "init_from")  # fmt: skip


def given_options(argv: list[str] | None, parser_class: type[argparse.ArgumentParser]) -> set[str]:
    """The TrainConfig fields ``argv`` sets itself, defaults left out."""
    parser = build_parser(parser_class)
    for action in parser._actions:
        action.default = argparse.SUPPRESS
    return {"model" if name == "model_option" else name for name in vars(parser.parse_args(argv))}


def with_the_runs_options(config: TrainConfig, given: set[str], say=note) -> TrainConfig:
    """``config`` for ``--resume``, each option the command leaves out being the run's own (its
    train_config.json), not the default: ``capsight train DATA --out runs/x --resume`` had gone on
    with --batch-images 32 where the run had 8, and been refused for a left-out --architecture."""
    recorded = Path(config.out) / "train_config.json"
    before = read_json_or_empty(recorded)
    if not before and recorded.is_file() and holds_run(config.out):
        say(f"{recorded}: damaged, so options left out take their defaults and changed ones go "
            "unnoted; give the run's options again")  # fmt: skip
    kept = {}
    for name in KEPT_ON_RESUME:
        if name in given or name not in before:
            continue
        if (
            name == "model"
            and "architecture" in given
            and config.architecture != before.get("architecture")
        ):
            continue  # another architecture's options: the refusal names --architecture, not them
        value, now = before[name], getattr(config, name)
        if name in PATH_OPTIONS:  # the folder it named where the run started, not from here
            value = run_path(before, name)
            if value and os.path.realpath(value) == os.path.realpath(now):
                continue  # the same folder (by a link, say): nothing to keep or say
        if isinstance(now, float) and type(value) is int:
            value = float(value)
        if type(value) is type(now) and value != now:  # (a value of another kind: a damaged file)
            kept[name] = value
    if not kept:
        return config
    shown = ", ".join(option_text(name, value) for name, value in kept.items() if name != "model")
    if "model" in kept:  # --model-option k=v, as given when the run started
        shown = ", ".join(
            filter(None, [shown, *(f"--model-option {k}={v}" for k, v in kept["model"].items())])
        )
    say(f"resuming with the run's own {shown} (options left out keep the run's values)")
    return dataclasses.replace(config, **kept)


def _tracker(args: argparse.Namespace, config: TrainConfig):
    if args.no_track:
        return None
    try:
        from capsight.training.tracking import create_tracker
    except ImportError:
        return None
    # MLflow writes "View run ... at: URL" on stdout when a run against a server ends, amid the
    # command's JSON lines there; it says where it tracks on stderr itself. (The command's
    # process only: a Python caller's MLflow keeps its own settings.)
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    resume_run_id = None
    trainer_file = settled_last(config.out) / "trainer.json"
    if config.resume and trainer_file.is_file():
        resume_run_id = read_trainer_state(trainer_file.parent).get("tracker_run_id")
    try:
        tracker = create_tracker(
            experiment="capsight-train",
            run_name=Path(config.out).resolve().name,
            resume_run_id=resume_run_id,
        )
        uri = str(getattr(tracker, "tracking_uri", "") or "")
        if uri.startswith(("sqlite:", "file:")):  # a local store: `mlflow ui` can open it
            # the checkpoints it copies go beside the store, in mlruns/: said, not found later
            where = _artifact_folder(tracker)
            note(f"tracked with MLflow in {uri}{f', checkpoints copied to {where}' if where else ''} "
                 f"(browse: mlflow ui --backend-store-uri {uri}; --no-track to skip)")  # fmt: skip
        elif uri:  # a tracking server: its own page; a password in the address is not printed
            note(f"tracked with MLflow at {re.sub(r'//[^/@]*@', '//', uri)} (--no-track to skip)")
        return tracker
    except MissingDependency as exc:  # mlflow not installed: train anyway, untracked
        print(f"capsight train: not tracking ({exc})", file=sys.stderr)
        return None


def _artifact_folder(tracker) -> str:
    """The folder a local MLflow run keeps its artifacts in
    (``.../mlruns/<experiment>/<run>/artifacts``), or "" where that is not a local folder."""
    try:
        artifacts = str(tracker.artifact_uri)
    except Exception:  # NullTracker and friends have none; a store gone since is said elsewhere
        return ""
    if not artifacts.startswith("file:"):
        return ""
    from urllib.parse import unquote, urlparse

    return unquote(urlparse(artifacts).path)


def train_main(
    argv: list[str] | None = None,
    parser_class: type[argparse.ArgumentParser] = argparse.ArgumentParser,
) -> int:
    """Entry point for ``capsight train`` and ``python -m capsight.training.train``."""
    args = build_parser(parser_class).parse_args(argv)
    if not args.out.strip():  # before anything looks for a run in the current folder
        raise InvalidParameter("--out is empty; name a folder for the run")
    config = config_from_args(args)
    if config.resume:  # (under torchrun each rank reads the same file; rank 0 says so)
        say = note if launch_rank() == 0 else (lambda message: None)
        config = with_the_runs_options(config, given_options(argv, parser_class), say)
    try:
        return _train_and_report(args, config)
    except (KeyboardInterrupt, OSError) as stop:  # the CLI says how to go on: --resume, or
        stop.epoch_saved = holds_run(config.out)  # start again (a full disk: resume once there
        raise  # is room; the error had said only "make room, or write elsewhere")


def _train_and_report(args: argparse.Namespace, config: TrainConfig) -> int:
    # The run folder's lock, held from before check_starting_point settles its last/ (another
    # run writing there is said before anything there is touched) until the run ends.
    with contextlib.ExitStack() as held:
        if launch_rank() == 0 and Path(config.out).is_dir():
            held.enter_context(run_folder_lock(Path(config.out)))
        return _report_training(args, config, held)


def _report_training(
    args: argparse.Namespace, config: TrainConfig, held: contextlib.ExitStack
) -> int:
    leader = launch_rank() == 0  # under torchrun only rank 0 tracks the run and reports
    check_starting_point(config, note if leader else None)
    # The data is read and checked first: a bad dataset leaves no empty MLflow run behind.
    corpus = training_corpus(config, note if leader else (lambda message: None))
    created = leader and not Path(config.out).exists()
    if leader:
        make_run_folder(config.out)  # before MLflow opens a run for it
        held.enter_context(run_folder_lock(Path(config.out)))  # (a folder new to this run)

    def drop_if_empty() -> None:
        try:  # failed before writing anything but its lock file
            if created and not any(p.name != LOCK for p in Path(config.out).iterdir()):
                (Path(config.out) / LOCK).unlink(missing_ok=True)
                Path(config.out).rmdir()
        except OSError:
            pass  # the run's own error matters, not this

    try:
        tracker = _tracker(args, config) if leader else None
    except BaseException:  # an MLflow store that cannot be opened: no empty run folder either
        drop_if_empty()
        raise
    finished, status = False, "FINISHED"
    try:
        result = train(config, tracker, corpus)
        finished = True
    except BaseException as error:  # the run is marked as it ended: KILLED after Ctrl-C, FAILED
        status = "KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED"
        drop_if_empty()
        raise
    finally:
        if tracker is not None and hasattr(tracker, "close"):
            tracker.close(status)
        leave_process_group(wait_for_the_others=finished)
    if not leader:
        return 0
    best_dir = str(result.best_dir) if result.best_dir.is_dir() else None  # None: no epoch ran
    print(json.dumps({"best_dir": best_dir, "best": result.best}))
    return 0
