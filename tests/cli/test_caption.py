"""`capsight caption`: real photos captioned, odd images accepted, bad files refused cleanly."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest

from capsight._cli.caption import attention_path, decoding_from_args
from capsight.captioning.options import DecodingOptions
from capsight.errors import InvalidParameter

# Content checks use the `labels` captioner: deterministic, and its words are ImageNet's. How well
# the trained default captions is the captioning tests' business; here it only has to answer.
LABELS = ("--model", "labels")


def test_captions_real_photos_one_line_each(run_cli, photo_dir):
    cat, cup = photo_dir / "cat.jpg", photo_dir / "coffee.png"
    status, out, err = run_cli("caption", *LABELS, cat, cup)
    assert status == 0, err
    lines = out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{cat}: ") and "cat" in lines[0].lower()
    assert lines[1].startswith(f"{cup}: ") and "espresso" in lines[1].lower()


def test_the_default_captioner_answers_and_says_who_it_is(run_cli, photo_dir):
    from capsight.captioning.base import default_captioner_name

    status, out, err = run_cli("caption", "--json", photo_dir / "cat.jpg")
    assert status == 0, err
    row = json.loads(out)[0]
    assert len(row["caption"].split()) >= 2
    assert row["model"] == default_captioner_name() != "default"


def test_json_has_caption_top3_labels_and_model(run_cli, photo_dir):
    status, out, _ = run_cli(
        "caption", "--json", *LABELS, photo_dir / "cat.jpg", photo_dir / "coffee.png"
    )
    assert status == 0
    rows = json.loads(out)
    assert [r["image"] for r in rows] == [str(photo_dir / "cat.jpg"), str(photo_dir / "coffee.png")]
    for row in rows:
        assert row["caption"] and row["model"]
        assert len(row["labels"]) == 3
        probs = [p for _, p in row["labels"]]
        assert probs == sorted(probs, reverse=True) and 0 < probs[0] <= 1
    assert "cat" in rows[0]["labels"][0][0].lower()


def test_batch_size_does_not_change_the_captions(run_cli, photo_dir):
    images = [photo_dir / "cat.jpg", photo_dir / "coffee.png", photo_dir / "cat.jpg"]
    _, batched, _ = run_cli("caption", "--json", *LABELS, *images)
    _, one_by_one, _ = run_cli("caption", "--json", *LABELS, "--batch-size", "1", *images)
    assert [r["caption"] for r in json.loads(batched)] == [
        r["caption"] for r in json.loads(one_by_one)
    ]


ODD_KINDS = ["cmyk.jpg", "grey16.png", "palette.png", "alpha.png", "grey.jpg", "exif_rotated.jpg"]


def test_json_interrupted_keeps_the_rows_written_so_far(run_cli, photo_dir, monkeypatch):
    """All of --json had waited for the last batch: a Ctrl-C on a large folder left nothing."""
    from capsight._cli.caption import CaptionRun

    real, batches = CaptionRun.caption, []

    def caption(self, batch):
        batches.append(batch)
        if len(batches) == 2:
            raise KeyboardInterrupt
        real(self, batch)

    monkeypatch.setattr(CaptionRun, "caption", caption)
    images = [photo_dir / "cat.jpg", photo_dir / "coffee.png"]
    status, out, err = run_cli("caption", "--json", *LABELS, "--batch-size", "1", *images)
    assert status == 130 and "interrupted" in err
    (row,) = json.loads(out)
    assert row["image"].endswith("cat.jpg") and row["caption"]


def test_odd_but_valid_images_are_captioned_and_still_a_cat(run_cli, photo_dir, odd_images):
    # One call for all of them (batched), plus the upright original to compare with.
    status, out, err = run_cli(
        "caption", "--json", *LABELS, photo_dir / "cat.jpg", *[odd_images[k] for k in ODD_KINDS]
    )
    assert status == 0, err
    upright, *rows = json.loads(out)
    assert [r["image"] for r in rows] == [str(odd_images[k]) for k in ODD_KINDS]
    cat_like = {"tabby", "tiger cat", "Egyptian cat", "Persian cat", "Siamese cat", "lynx"}
    for kind, row in zip(ODD_KINDS, rows, strict=True):
        assert row["caption"], kind
        assert cat_like & {name for name, _ in row["labels"]}, (kind, row["labels"])
    # EXIF orientation applied: the sideways-stored photo reads like the upright one.
    rotated = rows[ODD_KINDS.index("exif_rotated.jpg")]
    assert rotated["labels"][0][0] == upright["labels"][0][0]
    assert rotated["labels"][0][1] == pytest.approx(upright["labels"][0][1], abs=0.03)


@pytest.mark.parametrize(
    "kind,fragment",
    [
        ("empty", "empty"),
        ("text", "not an image"),
        ("truncated_image", "truncated"),
        ("bomb", "too large"),
        ("directory", "no images"),  # an empty folder: capsight caption reads folders
        ("random_bytes", "not an image"),
    ],
)
def test_bad_images_give_one_line_and_status_2(run_cli, bad_files, one_error_line, kind, fragment):
    status, out, err = run_cli("caption", bad_files[kind])
    assert status == 2 and out == ""
    one_error_line(err, str(bad_files[kind]), fragment)


def test_missing_file(run_cli, tmp_path, one_error_line):
    status, _, err = run_cli("caption", tmp_path / "nope.jpg")
    assert status == 2
    one_error_line(err, "nope.jpg", "no such file")
    # A URL is said to be one (it had read "https:/example.com/a.jpg: no such file").
    status, _, err = run_cli("caption", "https://example.com/a.jpg")
    assert status == 2
    one_error_line(err, "https://example.com/a.jpg: a URL; capsight reads local files")


def test_good_images_are_still_captioned_next_to_a_bad_one(
    run_cli, photo_dir, bad_files, one_error_line
):
    status, out, err = run_cli("caption", *LABELS, photo_dir / "cat.jpg", bad_files["text"])
    assert status == 2
    assert out.startswith(f"{photo_dir / 'cat.jpg'}: ")
    one_error_line(err, "notes.txt")


def test_a_folder_stands_for_the_images_in_it(run_cli, photo_dir, tmp_path):
    folder = tmp_path / "album"
    (folder / "2024" / ".thumbs").mkdir(parents=True)
    (folder / "2024" / "cat.JPG").write_bytes((photo_dir / "cat.jpg").read_bytes())
    (folder / "coffee.png").write_bytes((photo_dir / "coffee.png").read_bytes())
    (folder / "2024" / ".thumbs" / "cat.jpg").write_bytes((photo_dir / "cat.jpg").read_bytes())
    (folder / "notes.txt").write_text("not a photo")
    status, out, err = run_cli("caption", *LABELS, folder, "--json")
    assert status == 0, err
    images = [row["image"] for row in json.loads(out)]
    assert images == [str(folder / "2024" / "cat.JPG"), str(folder / "coffee.png")]
    assert "captioned" not in err  # no progress bar when stderr is not a terminal


def test_a_folder_without_images_is_one_line_and_the_rest_still_runs(
    run_cli, photo_dir, tmp_path, one_error_line
):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("nothing here")
    status, out, err = run_cli("caption", *LABELS, empty, photo_dir / "cat.jpg")
    assert status == 2
    assert out.startswith(f"{photo_dir / 'cat.jpg'}: ")
    one_error_line(err, "empty", "no images")


def test_json_keeps_a_row_for_each_file_that_could_not_be_read(run_cli, photo_dir, tmp_path):
    """A pipeline reading --json had to parse stderr to learn which inputs failed."""
    bad = tmp_path / "notes.jpg"
    bad.write_text("not a photo")
    empty = tmp_path / "empty"
    empty.mkdir()
    gone = tmp_path / "gone.jpg"
    status, out, err = run_cli(
        "caption", *LABELS, "--json", photo_dir / "cat.jpg", bad, empty, gone
    )
    assert status == 2
    folder_row, gone_row, cat, notes = json.loads(out)  # names that cannot be used come first
    assert set(folder_row) == {"error"} and folder_row["error"].startswith(
        f"{empty}: a folder with no images"
    )
    assert gone_row == {"error": f"{gone}: no such file"}
    assert cat["image"] == str(photo_dir / "cat.jpg") and cat["caption"] and "error" not in cat
    assert notes["image"] == str(bad) and notes["error"] in err and "caption" not in notes


def _args(**given) -> argparse.Namespace:
    base = dict(
        greedy=False,
        beam=None,
        sample=False,
        narrowing=False,
        temperature=None,
        top_k=None,
        top_p=None,
        num=None,
        seed=None,
        max_length=None,
        length_penalty=None,
        allow_repeats=False,
    )
    return argparse.Namespace(**{**base, **given})


def test_decoding_flags_map_to_options():
    assert decoding_from_args(_args()) is None  # the captioner's own default
    # --num alone keeps the rest of each model's own decoding (the pair's beam 4)
    assert decoding_from_args(_args(num=3)).over(DecodingOptions(beam_width=4)).beam_width == 4
    assert decoding_from_args(_args(greedy=True)).method == "greedy"
    beam = decoding_from_args(_args(beam=5))
    assert (beam.method, beam.beam_width) == ("beam", 5)
    sample = decoding_from_args(
        _args(sample=True, temperature=0.7, top_k=10, top_p=0.9, num=3, seed=1)
    )
    assert (
        sample.method,
        sample.temperature,
        sample.top_k,
        sample.top_p,
        sample.num_captions,
        sample.seed,
    ) == ("sample", 0.7, 10, 0.9, 3, 1)


def test_narrowing_takes_its_starting_width_from_top_k():
    narrowing = decoding_from_args(_args(narrowing=True, top_k=4, num=3, seed=2))
    assert (narrowing.method, narrowing.top_k, narrowing.num_captions) == ("narrowing", 4, 3)
    with pytest.raises(InvalidParameter, match="--narrowing takes --top-k only"):
        decoding_from_args(_args(narrowing=True, temperature=0.5))
    with pytest.raises(InvalidParameter, match="starting width: >= 1, got 0"):
        decoding_from_args(_args(narrowing=True, top_k=0))


@pytest.mark.parametrize("method", [{}, {"greedy": True}, {"beam": 5}])
def test_a_seed_without_a_random_method_is_refused(method):
    with pytest.raises(InvalidParameter, match="--seed needs --sample or --narrowing"):
        decoding_from_args(_args(seed=3, **method))


def test_narrowing_captions_real_photos(run_cli, photo_dir):
    status, out, err = run_cli("caption", "--json", photo_dir / "cat.jpg", "--model",
                               "show-attend-tell", "--narrowing", "--num", "3", "--seed", "1")  # fmt: skip
    assert status == 0, err
    row = json.loads(out)[0]
    assert len(row["caption"].split()) >= 3 and 1 <= len(row.get("alternatives", [])) + 1 <= 3


def test_several_captions_each_print_under_the_best(run_cli, photo_dir):
    """--num N without --json prints every caption: the best, then each other after "also:",
    as --json lists them; beside another model, under their own model's line."""
    flags = ("--model", "show-attend-tell", "--sample", "--num", "4", "--seed", "1")
    status, out, err = run_cli("caption", "--json", photo_dir / "cat.jpg", *flags)
    row = json.loads(out)[0]
    status, out, err = run_cli("caption", photo_dir / "cat.jpg", *flags)
    assert status == 0, err
    name = photo_dir / "cat.jpg"
    assert out.splitlines() == [
        f"{name}: {row['caption']}",
        *(f"  also: {a}" for a in row["alternatives"]),
    ]
    assert len(row["alternatives"]) >= 2

    status, out, err = run_cli("caption", photo_dir / "cat.jpg", *flags, "--model", "labels")
    lines = out.splitlines()
    assert lines[:2] == [str(name), f"  show-attend-tell  {row['caption']}"]
    assert lines[2:-1] == [f"  {'':<16}  also: {a}" for a in row["alternatives"]]
    assert lines[-1].startswith("  labels            a photo of")


def test_beam_search_flags_map_to_options_and_only_those():
    options = decoding_from_args(
        _args(beam=5, length_penalty=3.0, max_length=4, allow_repeats=True)
    )
    assert (options.beam_width, options.length_penalty, options.max_length) == (5, 3.0, 4)
    assert not (options.no_repeat_trigram or options.no_repeat_phrase or options.no_repeat_word)
    assert options.named == {
        "method",
        "beam_width",
        "length_penalty",
        "max_length",
        "no_repeat_trigram",
        "no_repeat_phrase",
        "no_repeat_word",
    }  # the rest: each model's own
    alone = decoding_from_args(_args(max_length=10)).over(DecodingOptions(beam_width=4))
    assert (alone.beam_width, alone.max_length, alone.no_repeat_trigram) == (4, 10, True)


def test_sampling_flags_without_sample_are_refused():
    with pytest.raises(InvalidParameter, match="need --sample"):
        decoding_from_args(_args(temperature=0.5))


@pytest.mark.parametrize(
    "argv,fragment",
    [
        (
            ["--beam", "0"],
            "--beam must be between 1 and 20, got 0",
        ),  # named as typed, not "beam width"
        (["--beam", "100000"], "--beam must be between 1 and 20"),
        (["--sample", "--num", "1000"], "--num must be between 1 and 20"),
        (["--sample", "--seed", "-1"], "--seed must be between 0 and"),
        (["--sample", "--temperature", "0"], "temperature"),
        (["--sample", "--temperature", "nan"], "temperature"),
        (["--greedy", "--num", "2"], "greedy decoding has one answer"),
        (["--model", "checkpoint"], "needs a folder"),
        (["--sample", "--top-p", "1.5"], "top-p"),
        (["--batch-size", "0"], "batch-size"),
        (["--model", "no-such-model"], "unknown captioner"),
        (["--model", "Show-And-Tell"], "(names are lower case: did you mean 'show-and-tell'?)"),
        (["--model", "show-attend-tel"], "'show-attend-tel' (did you mean 'show-attend-tell'?)"),
        (["--model", "runs/nowhere"], "runs/nowhere: no such checkpoint folder"),
        (["--max-length", "1"], "--max-length must be between 2 and 100"),
        (["--max-length", "1000000"], "--max-length must be between 2 and 100"),
        (["--length-penalty", "-1"], "--length-penalty must be between 0 (none) and 5"),
        (["--greedy", "--length-penalty", "1"], "--length-penalty ranks beam search's sentences"),
    ],
)
def test_bad_options_give_one_line_and_status_2(run_cli, photo_dir, one_error_line, argv, fragment):
    status, out, err = run_cli("caption", photo_dir / "cat.jpg", *argv)
    assert status == 2 and out == ""
    one_error_line(err, fragment)


def test_a_misspelt_second_model_is_refused_before_anything_is_captioned_or_made(
    run_cli, photo_dir, one_error_line, tmp_path
):
    """It was refused only after the first model had captioned a batch, and --attention's
    folder stayed behind, empty; --attention=~/x.png made a folder named "~"."""
    status, out, err = run_cli("caption", photo_dir, "--model", "labels", "--model", "nosuch",
                               "--attention", tmp_path / "maps" / "x.png")  # fmt: skip
    assert status == 2 and out == ""
    one_error_line(err, "unknown captioner 'nosuch'")
    assert not (tmp_path / "maps").exists()
    from capsight._cli.caption import _attention_file

    assert _attention_file("~/maps/x.png") == Path.home() / "maps" / "x.png"


def test_a_sample_without_a_seed_says_the_seed_that_gives_it_again(run_cli, photo_dir):
    """The seed a sample drew was thrown away: its captions could not be had again (the HTTP
    API echoed it)."""
    argv = (
        "caption",
        photo_dir / "cat.jpg",
        "--model",
        "show-attend-tell",
        "--sample",
        "--num",
        "3",
    )
    status, out, err = run_cli(*argv, "--json")
    assert status == 0, err
    row = json.loads(out)[0]
    assert (
        f"note: sampled with seed {row['seed']}: --seed {row['seed']} gives these captions" in err
    )
    again = json.loads(run_cli(*argv, "--json", "--seed", str(row["seed"]))[1])[0]
    assert (again["caption"], again.get("alternatives")) == (
        row["caption"],
        row.get("alternatives"),
    )
    assert "sampled with seed" not in run_cli(*argv, "--seed", "5")[2]  # (given: nothing to say)
    # --quiet turns off the progress bar, not the one way to have the captions again
    assert "note: sampled with seed " in run_cli(*argv, "--quiet")[2]
    labels = run_cli("caption", photo_dir / "cat.jpg", "--model", "labels", "--sample")[2]
    assert "ignores decoding options" in labels and "sampled with seed" not in labels  # nothing was


def test_beam_search_options_from_the_command_line(run_cli, photo_dir):
    """--max-length end to end, and --allow-repeats runs; how the flags map to DecodingOptions is
    test_beam_search_flags_map_to_options_and_only_those, what each option does test_decoding."""
    cat = photo_dir / "cat.jpg"
    model = ["--model", "show-attend-tell", "--json"]
    status, out, err = run_cli("caption", cat, *model, "--beam", "3", "--max-length", "4")
    assert status == 0, err
    assert 1 <= len(json.loads(out)[0]["caption"].split()) <= 3  # 4 tokens, the end one included
    status, out, err = run_cli("caption", cat, *model, "--max-length", "2")
    assert len(json.loads(out)[0]["caption"].split()) == 1
    assert (
        f"1 caption ({cat}) reached --max-length 2, where a caption is ended, finished or not"
        in err
    )
    status, out, err = run_cli("caption", cat, *model, "--max-length", "40")
    assert "reached --max-length" not in err
    status, out, err = run_cli("caption", cat, *model, "--allow-repeats")
    assert status == 0 and json.loads(out)[0]["caption"], err


def test_greedy_and_beam_together_is_a_usage_error(run_cli, photo_dir):
    status, _, err = run_cli("caption", photo_dir / "cat.jpg", "--greedy", "--beam", "3")
    assert status == 2 and "not allowed with" in err


def test_two_models_side_by_side(run_cli, photo_dir):
    cat, cup = photo_dir / "cat.jpg", photo_dir / "coffee.png"
    status, out, err = run_cli("caption", cat, cup, "--model", "show-attend-tell", *LABELS)
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0] == str(cat) and lines[3] == str(cup)
    assert lines[1].startswith("  show-attend-tell  ") and lines[2].startswith("  labels  ")
    assert "cat" in lines[2].lower() and len(lines[1].split()) >= 4
    status, out, _ = run_cli("caption", "--json", cat, "--model", "show-attend-tell", *LABELS)
    rows = json.loads(out)
    assert [(r["image"], r["model"]) for r in rows] == [
        (str(cat), "show-attend-tell"),
        (str(cat), "labels"),
    ]


def test_default_and_the_model_it_stands_for_are_one_model(run_cli, photo_dir):
    from capsight.captioning.base import default_captioner_name

    status, out, err = run_cli("caption", photo_dir / "cat.jpg", "--model", "default",
                               "--model", default_captioner_name(), *LABELS)  # fmt: skip
    assert status == 0, err
    assert len(out.splitlines()) == 3  # the photo, then one row per distinct model
    # Said: with both models one, the single-model line named neither.
    assert (
        f"capsight: note: --model {default_captioner_name()} is the model --model default stands for"
        in err
    )
    status, out, err = run_cli("caption", photo_dir / "cat.jpg", *LABELS, *LABELS)
    assert status == 0 and len(out.splitlines()) == 1
    assert err == "capsight: note: --model labels is named twice; each model captions once\n"


def test_fewer_distinct_captions_than_asked_gets_a_note(run_cli, photo_dir):
    # samples of a near-zero temperature all read alike (at 0.05, bfloat16 CPUs found a near-tie)
    status, out, err = run_cli("caption", photo_dir / "cat.jpg", "--model", "show-and-tell", "--num", "3",
                               "--sample", "--temperature", "0.01", "--seed", "1")  # fmt: skip
    assert status == 0 and out.strip()
    assert (
        f"capsight: note: 1 caption ({photo_dir / 'cat.jpg'}) got fewer than 3 distinct sentences"
        in err
    )
    assert "a higher --temperature, or a larger --top-k or --top-p, varies more" in err


def test_the_fewer_captions_note_gives_advice_that_fits_the_method():
    from capsight.captioning.options import DecodingOptions
    from capsight.captioning.shortfall import fewer_reason

    assert "--narrowing" not in fewer_reason(DecodingOptions(method="narrowing"))
    assert "larger --top-k, the schedule's starting width" in fewer_reason(
        DecodingOptions(method="narrowing")
    )
    assert "--sample with a higher --temperature" in fewer_reason(None)
    assert "--max-length 2 leaves room for few sentences" in fewer_reason(
        DecodingOptions(max_length=2)
    )


def test_attention_sheet_for_one_photo(run_cli, photo_dir, tmp_path):
    from PIL import Image

    target = tmp_path / "maps" / "cat.png"
    status, out, err = run_cli("caption", photo_dir / "cat.jpg", "--model", "show-attend-tell",
                               "--attention", target, "--json")  # fmt: skip
    assert status == 0, err
    row = json.loads(out)[0]
    assert row["attention"] == str(target) and f"attention: {target}" in err
    sheet = Image.open(target)
    words = len(row["caption"].split())
    assert sheet.width > 400 and sheet.height > 100 * ((words + 3) // 4)  # a tile per word


def test_a_tiny_image_is_captioned_with_a_note_that_it_is_a_guess(run_cli, photo_dir, tmp_path):
    """An 8x8 thumbnail was "a white dog is running in the air", as sure as a real photo."""
    from PIL import Image

    Image.open(photo_dir / "cat.jpg").resize((8, 8)).save(tmp_path / "tiny.png")
    status, out, err = run_cli("caption", tmp_path / "tiny.png", photo_dir / "cat.jpg")
    assert status == 0 and out.count("\n") == 2
    assert f"note: {tmp_path / 'tiny.png'}: only 8x8 px (under 32): too small to show" in err
    assert "cat.jpg: only" not in err
    Image.open(photo_dir / "cat.jpg").resize((2000, 20)).save(tmp_path / "strip.png")
    status, out, err = run_cli("caption", tmp_path / "strip.png", "--json")
    assert json.loads(out)[0]["note"].startswith(
        "2000x20 px, only 20 on its short side (under 32): too small"
    )
    Image.new("RGB", (8, 8), (40, 90, 200)).save(tmp_path / "flat.png")  # "a blank image": no guess
    status, out, err = run_cli("caption", tmp_path / "flat.png")
    assert status == 0 and out.endswith("a blank image\n") and "note" not in err


def test_a_name_too_long_to_be_a_file_is_one_line(run_cli, photo_dir, tmp_path):
    status, out, err = run_cli("caption", "a" * 300 + ".jpg", photo_dir / "cat.jpg",
                               "--attention", tmp_path / "att.png")  # fmt: skip
    assert status == 2 and "Traceback" not in err and out.count("\n") == 1
    assert "...': cannot be read (File name too long)" in err


def test_attention_file_names_do_not_hang_on_which_photos_could_be_read(
    run_cli, photo_dir, tmp_path
):
    target = tmp_path / "att.png"
    status, _, err = run_cli("caption", photo_dir / "cat.jpg", tmp_path / "gone.jpg",
                             "--model", "show-attend-tell", "--attention", target)  # fmt: skip
    assert status == 2 and "gone.jpg: no such file" in err
    assert [p.name for p in tmp_path.iterdir()] == ["att-cat.png"]  # as with both photos there


def test_attention_for_several_photos_and_a_model_without_attention(run_cli, photo_dir, tmp_path):
    target = tmp_path / "att.png"
    status, _, err = run_cli("caption", photo_dir / "cat.jpg", photo_dir / "coffee.png",
                             "--model", "show-attend-tell", *LABELS, "--attention", target)  # fmt: skip
    assert status == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "att-cat-labels.png", "att-cat-show-attend-tell.png",
        "att-coffee-labels.png", "att-coffee-show-attend-tell.png",
    ]  # fmt: skip
    assert "capsight: note: labels has no attention" in err and "Traceback" not in err
    from PIL import Image

    cam = Image.open(tmp_path / "att-cat-labels.png")
    band = cam.crop((0, 0, cam.width, 40)).convert("L")
    assert band.getextrema()[0] < 100  # a title is written above the class-activation map


def test_a_blank_image_is_said_to_be_blank_with_no_attention_or_short_count(
    run_cli, photo_dir, tmp_path
):
    """A black frame was captioned "a person in a blue shirt is holding a camera"."""
    from PIL import Image

    black = tmp_path / "black.png"
    Image.new("RGB", (320, 240)).save(black)
    status, out, err = run_cli("caption", black, photo_dir / "cat.jpg", "--model", "show-attend-tell",
                               "--num", "2", "--attention", tmp_path / "att.png", "--json")  # fmt: skip
    assert status == 0, err
    rows = json.loads(out)
    assert (
        rows[0]["caption"] == "a blank image"
        and "score" not in rows[0]
        and "attention" not in rows[0]
    )
    assert rows[0]["blank"] is True and "blank" not in rows[1]
    assert rows[0]["labels"] == [] and rows[1]["labels"]  # a flat colour's classes were noise
    assert rows[1]["caption"] != "a blank image" and rows[1]["attention"]
    assert f"note: {black}: a blank image (one flat colour) has no attention to draw" in err
    assert "fewer than 2 distinct" not in err  # the blank one is not "short"
    assert not (tmp_path / "att-black.png").exists()


def test_attention_must_name_an_image_file(run_cli, photo_dir, one_error_line):
    status, _, err = run_cli("caption", photo_dir / "cat.jpg", "--attention", "maps.txt")
    assert status == 2
    one_error_line(err, "--attention", ".png")


def test_attention_under_a_file_is_one_clear_line(run_cli, photo_dir, tmp_path, one_error_line):
    (tmp_path / "photo.jpg").write_text("x")
    status, _, err = run_cli("caption", photo_dir / "cat.jpg", "--model", "show-attend-tell",
                             "--attention", tmp_path / "photo.jpg" / "a.png")  # fmt: skip
    assert status == 2
    one_error_line(err, "a parent is a file, not a folder")


def test_attention_files_of_same_named_photos_do_not_collide(run_cli, photo_dir, tmp_path):
    import shutil

    other = tmp_path / "elsewhere"
    other.mkdir()
    shutil.copy(photo_dir / "cat.jpg", other / "cat.jpg")
    status, _, err = run_cli("caption", photo_dir / "cat.jpg", other / "cat.jpg", *LABELS,
                             "--attention", tmp_path / "a.png")  # fmt: skip
    assert status == 0, err
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["a-cat-2.png", "a-cat.png"]


def test_attention_never_replaces_a_photo_it_captions(run_cli, photo_dir, tmp_path, one_error_line):
    import shutil

    photo = tmp_path / "cat.jpg"
    shutil.copy(photo_dir / "cat.jpg", photo)
    before = photo.read_bytes()
    status, _, err = run_cli("caption", photo, *LABELS, "--attention", photo)
    assert status == 2 and photo.read_bytes() == before
    one_error_line(err, f"--attention {photo}: is the image to caption")
    # A generated name that is one of the photos takes a number instead.
    shutil.copy(photo_dir / "cat.jpg", tmp_path / "a-cat.jpg")
    status, _, err = run_cli("caption", photo, tmp_path / "a-cat.jpg", *LABELS,
                             "--attention", tmp_path / "a.jpg")  # fmt: skip
    assert status == 0, err
    assert (tmp_path / "a-cat.jpg").read_bytes() == before
    assert sorted(p.name for p in tmp_path.glob("a-*")) == [
        "a-a-cat.jpg",
        "a-cat-2.jpg",
        "a-cat.jpg",
    ]
    # With several images the name is a pattern, never written itself: naming a photo is fine.
    status, _, err = run_cli(
        "caption", photo, tmp_path / "a-cat.jpg", *LABELS, "--attention", photo
    )
    assert status == 0, err
    assert photo.read_bytes() == before and (tmp_path / "cat-cat.jpg").is_file()


def test_attention_files_name_a_checkpoint_folder_model_safely():
    path = attention_path(Path("out/att.png"), "photos/dog.jpg", "runs/sat/best", True, True)
    assert path == Path("out/att-dog-runs_sat_best.png")
    assert attention_path(Path("a.png"), "-", "m", True, False) == Path("a-stdin.png")  # not a--


def test_decoding_flags_on_the_labels_model_get_a_note(run_cli, photo_dir):
    status, out, err = run_cli("caption", *LABELS, "--beam", "5", photo_dir / "cat.jpg")
    assert status == 0 and "cat" in out.lower()
    assert err.startswith("capsight: note: the labels model ignores decoding options")
    assert run_cli("caption", *LABELS, photo_dir / "cat.jpg")[2] == ""
    status, out, err = run_cli("caption", *LABELS, "--num", "3", photo_dir / "cat.jpg")
    assert status == 0 and err.count("capsight: note:") == 1  # not "got fewer than 3 sentences"


def test_the_labels_note_also_when_the_default_is_labels(run_cli, photo_dir, monkeypatch):
    """Where no trained captioner is installed, "default" is labels: the same note, once."""
    import capsight.captioning.base as base

    monkeypatch.setattr(base, "default_captioner_name", lambda: "labels")
    status, out, err = run_cli("caption", "--num", "3", photo_dir / "cat.jpg", photo_dir / "coffee.png",
                               "--batch-size", "1")  # fmt: skip
    assert status == 0 and "a photo of" in out
    assert err.count("capsight: note: the labels model ignores decoding options") == 1
    assert err.count("capsight: note:") == 1


def test_an_attention_file_that_cannot_be_written_fails_before_any_model_runs(
    run_cli, photo_dir, tmp_path, one_error_line, monkeypatch
):
    import capsight.captioning.facade as facade

    def no_model(*args, **kwargs):
        raise AssertionError("a model ran before --attention was checked")

    monkeypatch.setattr(facade, "describe_images", no_model)
    (tmp_path / "photo.jpg").write_text("x")
    status, out, err = run_cli("caption", photo_dir / "cat.jpg", photo_dir / "coffee.png",
                               "--attention", tmp_path / "photo.jpg" / "a.png")  # fmt: skip
    assert status == 2 and out == ""
    one_error_line(err, "a parent is a file, not a folder")


def test_a_sheet_that_cannot_be_written_costs_only_itself(
    run_cli, photo_dir, tmp_path, one_error_line
):
    """Its error line comes, the exit status is 2, and every caption is still printed."""
    (tmp_path / "a-coffee.png").mkdir()  # where coffee's sheet would go: a folder
    status, out, err = run_cli("caption", photo_dir / "cat.jpg", photo_dir / "coffee.png", *LABELS,
                               "--attention", tmp_path / "a.png", "--json")  # fmt: skip
    assert status == 2
    rows = json.loads(out)
    assert [Path(r["image"]).name for r in rows] == ["cat.jpg", "coffee.png"]
    assert rows[0]["attention"] == str(tmp_path / "a-cat.png") and "attention" not in rows[1]
    errors = [line for line in err.splitlines() if line.startswith("capsight: error:")]
    assert len(errors) == 1 and "a-coffee.png" in errors[0] and "Traceback" not in err
    (tmp_path / "one.png").mkdir()
    status, out, err = run_cli(
        "caption", photo_dir / "cat.jpg", *LABELS, "--attention", tmp_path / "one.png"
    )
    # one photo, one file: a folder there is refused before any work
    assert status == 2 and out == ""
    one_error_line(err, "is a folder")


def test_the_attention_title_says_an_ensemble_shows_one_members_attention():
    from capsight._cli.caption import attention_title

    pair = {
        "encoder": "efficientnet-lite0 + efficientnet-lite2",
        "kind": "trained show-attend-tell decoder (ensemble of 2) on ...",
    }
    assert attention_title("show-attend-tell-pair", pair, "efficientnet-lite0", "a dog runs") == (
        "show-attend-tell-pair (efficientnet-lite0 member's attention): a dog runs"
    )
    single = {"encoder": "efficientnet-lite0", "kind": "trained show-attend-tell decoder"}
    assert attention_title("show-attend-tell", single, "efficientnet-lite0", "a dog runs") == (
        "show-attend-tell: a dog runs"
    )


def test_special_files_and_dangling_links_are_named_for_what_they_are(run_cli, photo_dir, tmp_path):
    import os

    folder = tmp_path / "photos"
    folder.mkdir()
    os.mkfifo(tmp_path / "pipe.jpg")
    (folder / "gone.jpg").symlink_to(tmp_path / "nothing.jpg")
    status, _, err = run_cli("caption", tmp_path / "pipe.jpg", folder, *LABELS)
    assert status == 2
    assert "pipe.jpg: not a regular file" in err  # it was "file is empty"; reading could block
    assert "gone.jpg: a link to nothing" in err  # it was skipped without a word
    status, _, err = run_cli("caption", photo_dir / "cat.jpg", "--bogus")
    assert status == 2 and "(see `capsight caption --help`)" in err


def test_an_image_piped_in_is_read_from_dash(run_cli, photo_dir, monkeypatch, tmp_path):
    """`cat photo.jpg | capsight caption -` said "-: no such file"."""
    import io

    class Piped(io.TextIOWrapper):
        def isatty(self):
            return False

    def pipe(data: bytes) -> None:
        monkeypatch.setattr(sys, "stdin", Piped(io.BytesIO(data)))

    photo = (photo_dir / "cat.jpg").read_bytes()
    pipe(photo)
    status, out, err = run_cli("caption", "-", "--model", "labels")
    assert status == 0 and out.startswith("-: ") and "cat" in out, err
    pipe(photo)
    status, out, err = run_cli("classify", "-", "--classes", "cat, car")
    assert status == 0 and out.startswith("-: cat "), err
    pipe(photo)
    status, out, err = run_cli("caption", "-", "-", "--model", "labels")
    assert status == 0 and out.count("\n") == 1  # named twice: read once, as any image
    pipe(b"")
    status, _, err = run_cli("caption", "-")
    assert status == 2 and "standard input: file is empty" in err
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(photo)))
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)  # nothing piped: it would wait
    status, _, err = run_cli("caption", "-")
    assert status == 2 and "-: standard input is a terminal; pipe an image in" in err
    monkeypatch.chdir(tmp_path)  # a file named "-" is that file
    (tmp_path / "-").write_bytes(photo)
    status, out, _ = run_cli("caption", "-", "--model", "labels")
    assert status == 0 and "cat" in out


def test_an_empty_image_name_or_attention_file_is_refused(run_cli, photo_dir):
    """``capsight caption ""`` (an unset shell variable) captioned every photo in the current
    folder; ``--attention ''`` was named "." in its error."""
    status, out, err = run_cli("caption", "", photo_dir / "cat.jpg", *LABELS)
    assert status == 2 and "cat" in out.lower()  # the other photo is captioned all the same
    assert (
        "capsight: error: '': an empty image name; name a file or a folder (. for this one)" in err
    )
    status, out, err = run_cli("caption", photo_dir / "cat.jpg", "--attention", "", *LABELS)
    assert status == 2 and out == ""
    assert (
        err == "capsight: error: --attention is empty; name an image file (.png, .jpg or .webp)\n"
    )


def test_a_sheet_cut_off_by_a_full_disk_is_not_left_behind(
    run_cli, photo_dir, tmp_path, monkeypatch
):
    """A 64 KiB disk left a truncated 65,536-byte att.png under the name asked for."""
    import errno

    from PIL import Image

    def full_disk(self, fp, format=None, **params):
        fp.write(b"\x89PNG half of it")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", full_disk)
    status, out, err = run_cli(
        "caption", photo_dir / "cat.jpg", *LABELS, "--attention", tmp_path / "att.png"
    )
    assert status == 2 and "cat" in out.lower()
    assert "--attention" in err and "No space left on device" in err
    assert list(tmp_path.iterdir()) == []  # neither the half sheet nor its temporary file


def test_q_is_quiet_for_caption_and_eval_as_for_the_other_commands(run_cli, photo_dir):
    status, out, err = run_cli("caption", photo_dir / "cat.jpg", "-q", "--model", "labels")
    assert status == 0 and out.startswith(f"{photo_dir / 'cat.jpg'}: ") and err == ""
    from capsight._cli.main import build_parser

    assert build_parser().parse_args(["eval", "data", "-q"]).quiet


def test_a_file_named_with_a_leading_dash_is_pointed_out(run_cli, photo_dir, tmp_path, monkeypatch):
    """argparse reads `-dash.jpg` as an option and said only that IMAGE was missing."""
    import shutil

    shutil.copy(photo_dir / "cat.jpg", tmp_path / "-dash.jpg")
    monkeypatch.chdir(tmp_path)
    status, out, err = run_cli("caption", "-dash.jpg")
    assert status == 2 and out == ""
    assert err.strip().endswith(
        "; -dash.jpg is a file here: write ./-dash.jpg, or put -- before it"
    )
    status, _, err = run_cli("caption", "-nothing.jpg")  # not a file: argparse's words alone
    assert status == 2 and "is a file here" not in err


def test_json_stays_valid_utf8_for_a_name_that_is_not(photo_dir, tmp_path, capsysbinary):
    """stdout writes such a name as its own bytes; inside --json's text that byte had made the
    whole list unreadable to a JSON reader."""
    import json
    import os
    import shutil

    from capsight._cli.main import main

    weird = tmp_path / os.fsdecode(b"caf\xe9.jpg")
    shutil.copy(photo_dir / "cat.jpg", weird)
    assert main(["caption", str(weird), "--json", *LABELS]) == 0
    rows = json.loads(capsysbinary.readouterr().out.decode("utf-8"))
    assert rows[0]["image"] == str(weird)  # (json reads the escape back as the surrogate)


@pytest.mark.slow  # a new process that loads the labels model
@pytest.mark.parametrize("encoding", ["ascii", "latin-1"])
def test_a_name_the_output_cannot_encode_is_escaped_not_a_traceback(photo_dir, tmp_path, encoding):
    """Under PYTHONIOENCODING=ascii, "ünï 猫.jpg" had been a UnicodeEncodeError traceback (an
    audit, 2026-12-08); a name that is not UTF-8 still comes out as its own bytes."""
    import os
    import shutil
    import subprocess
    import sys

    odd = [tmp_path / "ünï 猫.jpg", tmp_path / os.fsdecode(b"caf\xe9.jpg")]
    for path in odd:
        shutil.copy(photo_dir / "cat.jpg", path)
    for extra in ([], ["--json"]):
        done = subprocess.run(
            [sys.executable, "-m", "capsight", "caption", *map(str, odd), *LABELS, *extra],
            capture_output=True,
            env={**os.environ, "PYTHONIOENCODING": encoding},
            timeout=300,
        )
        assert done.returncode == 0 and b"Traceback" not in done.stderr, done.stderr
        if not extra:
            assert b"\\xfcn\\xef \\u732b.jpg: " in done.stdout or (
                encoding == "latin-1" and "ünï \\u732b.jpg: ".encode("latin-1") in done.stdout
            ), done.stdout
            assert b"caf\xe9.jpg: " in done.stdout


def test_control_characters_in_a_name_are_escaped_in_the_output(photo_dir, tmp_path, run_cli):
    """A newline in a file name had split its caption line in two, and an escape sequence
    reached the terminal (an audit, 2026-12-08)."""
    import shutil

    odd = tmp_path / "new\nline\x1b[31m.jpg"
    shutil.copy(photo_dir / "cat.jpg", odd)
    status, out, err = run_cli("caption", odd, *LABELS)
    assert status == 0, err
    assert out.count("\n") == 1 and "\x1b" not in out
    assert out.startswith(f"{tmp_path}/new\\nline\\x1b[31m.jpg: ")
    status, _, err = run_cli("caption", tmp_path / "gone\x1b[2J.jpg")
    assert status == 2 and "\x1b" not in err and "gone\\x1b[2J.jpg" in err
