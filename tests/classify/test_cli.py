"""``capsight classify`` and ``capsight classifier build`` from the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from capsight._cli.main import main
from capsight.classify.class_sets import parse_classes


@pytest.fixture
def cat_png(tmp_path, photo):
    path = tmp_path / "cat.png"
    photo("chelsea").save(path)
    return path


def test_classify_prints_json(cat_png, capsys):
    assert main(["classify", str(cat_png), "--classes", "cat,dog,car", "--json", "--top", "2"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["image"] == str(cat_png) and row["stands_out"] is True
    assert [t["label"] for t in row["top"]][0] == "cat"
    assert len(row["top"]) == 2


def test_classify_text_output_and_a_missing_file(cat_png, tmp_path, capsys):
    status = main(["classify", str(cat_png), str(tmp_path / "gone.jpg"), "--classes", "cat,dog"])
    out, err = capsys.readouterr()
    assert status == 2
    assert out.startswith(f"{cat_png}: cat ")
    assert err.count("\n") == 1 and "gone.jpg" in err and "Traceback" not in err


def test_classify_a_folder_in_chunks(cat_png, tmp_path, capsys, monkeypatch):
    import capsight._cli.classify as classify_cli

    monkeypatch.setattr(classify_cli, "CHUNK", 2)  # three photos: two chunks
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("a.png", "b.png", "c.png"):
        (folder / name).write_bytes(cat_png.read_bytes())
    (folder / "list.csv").write_text("not a photo")
    assert main(["classify", str(folder), "--classes", "cat,dog", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["image"] for r in rows] == [str(folder / n) for n in ("a.png", "b.png", "c.png")]
    assert all(r["top"][0]["label"] == "cat" for r in rows)


def test_json_has_a_row_in_place_of_each_photo_it_could_not_read(cat_png, tmp_path, capsys):
    """As `capsight caption --json` has it: a pipeline had to parse stderr to learn which
    photos failed."""
    bad = tmp_path / "bad.jpg"
    bad.write_text("not a photo")
    gone = tmp_path / "gone.jpg"
    argv = ["classify", str(cat_png), str(gone), str(bad), "--classes", "cat,dog", "--json"]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    missing, cat, unread = json.loads(out)  # a name that names no file first, as caption's
    assert "gone.jpg" in missing["error"] and "image" not in missing
    assert cat["image"] == str(cat_png) and cat["top"][0]["label"] == "cat"
    assert unread["image"] == str(bad) and "bad.jpg" in unread["error"] and "top" not in unread
    assert err.count("\n") == 2


def test_json_interrupted_keeps_the_chunks_done(cat_png, tmp_path, capsys, monkeypatch):
    import capsight._cli.classify as classify_cli
    import capsight.classify.engines as engines

    monkeypatch.setattr(classify_cli, "CHUNK", 1)
    real, calls = engines.predictions, []

    def predictions(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(engines, "predictions", predictions)
    second = tmp_path / "second.png"
    second.write_bytes(cat_png.read_bytes())
    assert main(["classify", str(cat_png), str(second), "--classes", "cat,dog", "--json"]) == 130
    (row,) = json.loads(capsys.readouterr().out)
    assert row["top"][0]["label"] == "cat"


def test_classifying_a_folder_shows_how_many_photos_are_done(cat_png, tmp_path, monkeypatch):
    """400 photos had taken 40 s under a bar that said nothing of them (it was the class
    names'); with --json, which prints at the end, nothing else showed they were under way."""
    import capsight._cli.classify as classify_cli
    from capsight._cli.progress_bar import ProgressBar

    monkeypatch.setattr(classify_cli, "CHUNK", 2)
    monkeypatch.setattr(ProgressBar, "wanted", staticmethod(lambda quiet, file=None: not quiet))
    heard = []
    monkeypatch.setattr(ProgressBar, "__call__", lambda self, f, m: heard.append((round(f, 2), m)))
    for name in ("a.png", "b.png", "c.png"):
        (tmp_path / name).write_bytes(cat_png.read_bytes())
    argv = [
        "classify",
        *(str(tmp_path / n) for n in ("a.png", "b.png", "c.png")),
        "--classes",
        "cat,dog",
    ]
    assert main([*argv, "--json"]) == 0
    assert [h for h in heard if h[1].startswith("classified")] == [
        (0.67, "classified 2 of 3 photos"), (1.0, "classified 3 of 3 photos")
    ]  # fmt: skip
    heard.clear()
    assert main([*argv, "--json", "--quiet"]) == 0
    assert not [h for h in heard if h[1].startswith("classified")]


@pytest.mark.parametrize(
    "argv",
    [
        ["--classes", ""],
        ["--classes", "cat,dog", "--top", "0"],
        ["--classes", "cat,dog", "--template", "no placeholder"],
        ["--classes", "cat,dog", "--engine", "clip"],
    ],
)
def test_classify_bad_options_exit_2_with_one_line(cat_png, argv, capsys):
    assert main(["classify", str(cat_png), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("capsight: error:") and err.count("\n") == 1


def test_a_class_list_given_as_a_photo_is_pointed_to_classes(cat_png, capsys):
    """`capsight classify photo.jpg "cat, dog"`: the list had been read as a missing photo's
    path, and the error named --classes without saying why."""
    assert main(["classify", str(cat_png), "cat, dog"]) == 2
    err = capsys.readouterr().err
    assert err.endswith("('cat, dog' is no file: --classes 'cat, dog'?)\n") and err.count("\n") == 1


@pytest.mark.slow
def test_classifier_build_writes_a_torchscript_file(tmp_path, capsys):
    out = tmp_path / "clf.pt"
    assert main(["classifier", "build", "--classes", "cat,dog,car", "--out", str(out)]) == 0
    assert out.is_file() and "3 classes" in capsys.readouterr().out
    import torch

    module = torch.jit.load(str(out))
    assert list(module.labels) == ["cat", "dog", "car"]


@pytest.mark.slow
def test_classifier_build_notes_classes_the_file_would_tie_on_every_photo(tmp_path, capsys):
    out = tmp_path / "clf.pt"
    assert (
        main(["classifier", "build", "--classes", "cat, cats, dog", "--out", str(out), "--quiet"])
        == 0
    )
    err = capsys.readouterr().err
    assert (
        err.count("\n") == 1
        and "note: the classes 'cat', 'cats' look the same to the engine" in err
    )


def test_classifier_build_needs_classes_or_examples(tmp_path, capsys):
    assert main(["classifier", "build", "--out", str(tmp_path / "x.pt")]) == 2
    assert "--classes" in capsys.readouterr().err
    assert main(["classifier", "build", "--classes", "a,b", "--out", str(tmp_path / "x.zip")]) == 2
    capsys.readouterr()
    with pytest.raises(SystemExit):  # the word left out is named as the usage line names it
        main(["classifier", "--classes", "a,b", "--out", str(tmp_path / "x.pt")])
    assert "the following arguments are required: build" in capsys.readouterr().err


@pytest.mark.parametrize(
    "where,fragment",
    [
        ("folder.pt", "folder.pt: is a folder; name the file to write"),
        ("photo.jpg/clf.pt", "photo.jpg: is a file, not a folder"),
        ("nowhere/clf.pt", "nowhere: output folder does not exist"),
        ("dangling.pt", "whose folder does not exist"),  # a link into a folder that is gone
    ],
)
def test_classifier_build_to_a_place_it_cannot_write_is_one_line(tmp_path, capsys, where, fragment):
    (tmp_path / "folder.pt").mkdir()
    (tmp_path / "photo.jpg").write_text("x")
    (tmp_path / "dangling.pt").symlink_to(tmp_path / "gone" / "x.pt")
    assert main(["classifier", "build", "--classes", "a,b", "--out", str(tmp_path / where)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and fragment in err


def test_save_classifier_reports_a_failed_open_in_one_line(tmp_path, monkeypatch):

    from capsight.classify.class_sets import parse_classes
    from capsight.classify.engines import create_engine
    from capsight.classify.export import save_classifier
    from capsight.errors import InvalidParameter

    classifier = create_engine("offline").build(parse_classes("cat,dog"))

    def refuse(self, mode="r", *args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "open", refuse)
    with pytest.raises(InvalidParameter, match=r"clf.pt: cannot write it \(Permission denied\)"):
        save_classifier(classifier, tmp_path / "clf.pt")


@pytest.mark.parametrize(
    "argv,fragment",
    [
        (["--classes", ""], "the class list is empty"),
        (["--classes", "a,b", "--names"], "--names reads the class names from --examples"),
        (["--examples", ""], "examples folder name is empty"),
        (["--examples", "ex", "--template", "art of {}."], "--template fills in class names"),
    ],
)
def test_classifier_build_refuses_empty_or_pointless_options(tmp_path, capsys, argv, fragment):
    out = tmp_path / "clf.pt"
    assert main(["classifier", "build", *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and fragment in err
    assert not out.exists()


def test_classifier_build_refuses_examples_with_clip_before_loading_it(tmp_path, capsys):
    argv = ["--examples", str(tmp_path), "--engine", "clip", "--clip", str(tmp_path / "no-clip")]
    assert main(["classifier", "build", *argv, "--out", str(tmp_path / "clf.pt")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--examples works with the offline engine only" in err


def test_classifier_build_shows_the_export_and_leaves_nothing_when_interrupted(
    tmp_path, capsys, monkeypatch
):
    import capsight.classify.export as export
    from capsight._cli.progress_bar import ProgressBar

    def interrupted(classifier):
        raise KeyboardInterrupt

    monkeypatch.setattr(ProgressBar, "wanted", staticmethod(lambda quiet, file=None: not quiet))
    monkeypatch.setattr(export, "to_torchscript", interrupted)
    out = tmp_path / "clf.pt"
    assert main(["classifier", "build", "--classes", "cat,dog", "--out", str(out)]) == 130
    assert "writing clf.pt" in capsys.readouterr().err  # the export's seconds are not silent
    assert list(tmp_path.iterdir()) == []


def test_classifier_build_names_an_empty_or_nameless_out_in_its_error(capsys):
    assert main(["classifier", "build", "--classes", "a,b", "--out", ""]) == 2
    assert capsys.readouterr().err == "capsight: error: '': --out must end in .pt or .pt2\n"
    assert main(["classifier", "build", "--classes", "a,b", "--out", "models/.pt"]) == 2
    assert "needs a file name before .pt" in capsys.readouterr().err


def test_names_the_engine_cannot_tell_apart_get_a_note(cat_png, capsys):
    """ "猫" and "狗" embed as the same unknown words: they tie on every photo, said so."""
    assert main(["classify", str(cat_png), "--classes", "猫, 狗, cat, car"]) == 0
    out, err = capsys.readouterr()
    assert "capsight: note: the classes '猫', '狗' look the same to the engine" in err
    assert out.startswith(f"{cat_png}: cat ")
    assert main(["classify", str(cat_png), "--classes", "cat, dog"]) == 0
    assert "look the same" not in capsys.readouterr().err


def test_a_class_file_with_commas_on_its_lines_gets_a_note(cat_png, tmp_path, capsys):
    """Each line is one class: "cat, dog" on a line, or a CSV of name and id, is said to be."""
    path = tmp_path / "classes.csv"
    path.write_text("cat, dog\nbird\ncar,1\n")
    assert main(["classify", str(cat_png), "--classes", str(path)]) == 0
    out, err = capsys.readouterr()
    assert err == (f"capsight: note: {path}: 2 lines hold a comma ('cat, dog'); each line is one "
                   "class, commas and all, so put one name per line\n")  # fmt: skip
    assert out.startswith(f'{cat_png}: "cat, dog" ')  # quoted: ", " also separates classes
    path.write_text("cat\ndog\n")
    assert (
        main(["classifier", "build", "--classes", str(path), "--out", str(tmp_path / "c.pt")]) == 0
    )
    assert "note" not in capsys.readouterr().err
    path.write_text("cat\ndog, puppy\n")
    assert (
        main(["classifier", "build", "--classes", str(path), "--out", str(tmp_path / "c.pt")]) == 0
    )
    assert "a line holds a comma ('dog, puppy')" in capsys.readouterr().err
    assert parse_classes("cat, dog").notes == ()  # typed inline, commas separate the classes


def test_a_class_file_with_tabs_is_refused_not_read_as_names_with_their_ids(
    cat_png, tmp_path, capsys
):
    """A TSV of name and id had become the classes "cat 1" and "dog 2", without a word, and cost
    10 points of accuracy on the labelled photos."""
    path = tmp_path / "names.tsv"
    path.write_text("cat\t1\ndog\t2\n")
    assert main(["classify", str(cat_png), "--classes", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == (
        f"capsight: error: {path}: line 1 holds a tab ('cat <tab> 1'); a class file holds one name "
        "a line, not columns: keep only the names\n"
    )


def test_a_photo_whose_top_class_does_not_stand_out_gets_a_note(cat_png, capsys, monkeypatch):
    """As the web page has it: scores are shares of the classes asked about, so a photo of
    none of them still has a "winner" (an accordion: book 0.028, banana 0.026)."""
    assert main(["classify", str(cat_png), "--classes", "cat,dog"]) == 0
    assert capsys.readouterr().err == ""  # cat 0.99: it stands out
    assert main(["classify", str(cat_png), "--classes", "apple,banana"]) == 0  # 0.51, 0.49
    err = capsys.readouterr().err
    assert err.startswith("capsight: note: no class stands out on 1 photo (") and "cat.png" in err
    assert "so it may show none of the classes, or several" in err


def test_standing_out_is_a_clear_lead_in_points_or_in_ratio():
    from capsight.classify.standout import stands_out

    assert not stands_out([0.52, 0.48]) and stands_out([0.6, 0.4])  # 20 points
    assert stands_out([0.21, 0.04, 0.03]) and not stands_out([0.256, 0.088])  # 3x, from 10%
    assert not stands_out([0.05, 0.01]) and stands_out([1.0]) and not stands_out([])


def test_a_photo_too_small_to_show_a_class_gets_a_note(cat_png, tmp_path, capsys):
    """As `capsight caption` notes it: a 3x3 icon, read stretched to 224 px, had scores given
    as if they meant as much as a photo's."""
    from PIL import Image

    tiny = tmp_path / "tiny.png"
    Image.open(cat_png).resize((20, 3)).save(tiny)
    assert main(["classify", str(tiny), str(cat_png), "--classes", "cat,dog"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("capsight: note: 1 photo (") and "tiny.png) under 32 px on a side" in err
    assert "cat.png" not in err


def test_a_blank_or_animated_photo_gets_a_note(cat_png, tmp_path, capsys):
    """caption notes both; classify had given their scores without a word (an audit,
    2026-12-08). --json and the Python API carry the note per photo."""
    import json

    from PIL import Image

    import capsight

    Image.new("RGBA", (300, 200), (0, 0, 0, 0)).save(tmp_path / "clear.png")
    cat = Image.open(cat_png).convert("RGB")
    cat.save(tmp_path / "anim.gif", save_all=True, append_images=[cat.rotate(90)], duration=100)
    photos = [str(tmp_path / "clear.png"), str(tmp_path / "anim.gif"), str(cat_png)]
    assert main(["classify", *photos, "--classes", "cat,dog"]) == 0
    err = capsys.readouterr().err
    assert "note: 1 photo (" in err and "clear.png) is blank (one flat colour)" in err
    assert "anim.gif) is an animation or a file of several pages: only the first frame" in err
    assert main(["classify", *photos, "--classes", "cat,dog", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [("note" in row) for row in rows] == [True, True, False]
    found = capsight.classify_images(photos, "cat, dog")
    assert found[0].note.startswith("a blank image") and found[2].note is None
    assert "first frame" in found[1].note
