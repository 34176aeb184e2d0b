"""``capsight classify --classifier FILE``: a built classifier file run as capsight runs its own."""

from __future__ import annotations

import json
import zipfile

import pytest
import torch

from capsight._cli.main import main
from capsight.classify.classifier import predict
from capsight.classify.export import save_classifier
from capsight.classify.exported import load_classifier
from capsight.errors import InputNotFound, InvalidParameter


@pytest.fixture
def cat_png(tmp_path, photo):
    path = tmp_path / "cat.png"
    photo("chelsea").resize((90, 60)).save(path)
    return path


@pytest.mark.parametrize("suffix", [".pt", ".pt2"])
def test_a_loaded_file_scores_as_the_classifier_it_was_built_from(
    suffix, tiny_classifier, tmp_path, photo
):
    path = save_classifier(tiny_classifier, tmp_path / f"clf{suffix}")
    loaded = load_classifier(path).eval()  # a habit; a torch.export program refuses eval() itself
    assert loaded.labels == ["a", "b"] and loaded.engine == "offline" and not loaded.training
    photos = [photo("chelsea").resize((40, 30)), photo("coffee").resize((25, 35))]
    expected = predict(tiny_classifier.eval(), photos)
    assert torch.allclose(predict(loaded, photos), expected, atol=1e-6)
    assert loaded(torch.zeros(0, 3, 30, 40)).shape == (0, 2)  # an empty batch, as the built one
    assert tiny_classifier(torch.zeros(0, 3, 30, 40)).shape == (0, 2)


def test_a_torch_export_file_takes_photos_wider_than_its_sides(tiny_classifier, tmp_path, photo):
    # The program accepts sides of 2 to 8,192 px; a panorama or a one-pixel strip is resized to
    # the nearest size it takes, and scores as the classifier it came from (which squashes too).
    loaded = load_classifier(save_classifier(tiny_classifier, tmp_path / "clf.pt2"))
    wide, strip = photo("coffee").resize((8300, 40)), photo("chelsea").resize((60, 1))
    probs = predict(loaded, [wide, strip])
    assert torch.allclose(probs, predict(tiny_classifier.eval(), [wide, strip]), atol=0.02)


def test_classify_runs_a_classifier_file(tiny_classifier, cat_png, tmp_path, capsys):
    path = save_classifier(tiny_classifier, tmp_path / "clf.pt")
    argv = ["classify", str(cat_png), str(tmp_path / "gone.png"), "--classifier", str(path)]
    assert main([*argv, "--json", "--top", "1"]) == 2  # the missing photo; the other is classified
    out, err = capsys.readouterr()
    missing, row = json.loads(out)  # the name that names no file has its row first
    assert "gone.png" in missing["error"]
    assert row["image"] == str(cat_png) and row["top"][0]["label"] in ("a", "b")
    errors = [line for line in err.splitlines() if line.startswith("capsight: error:")]
    assert len(errors) == 1 and "gone.png" in errors[0]  # (the tiny classifier's near tie: a note)


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--classes", "cat,dog"], "drop --classes"),
        (["--template", "a {}"], "drop --template"),
        (["--engine", "clip", "--clip", "x"], "drop --engine and --clip"),
        (["--engine", "offline"], "drop --engine"),  # the default's name: was taken silently
    ],
)
def test_options_a_classifier_file_decides_are_refused(
    tiny_classifier, cat_png, tmp_path, capsys, extra, message
):
    path = save_classifier(tiny_classifier, tmp_path / "clf.pt")
    assert main(["classify", str(cat_png), "--classifier", str(path), *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_classify_needs_classes_or_a_classifier(cat_png, capsys):
    assert main(["classify", str(cat_png)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--classes" in err and "--classifier" in err


def test_files_that_are_not_classifiers_are_one_line(tmp_path, capfd):
    with pytest.raises(InputNotFound, match="no such classifier file"):
        load_classifier(tmp_path / "gone.pt")
    with pytest.raises(InvalidParameter, match="is a folder"):
        load_classifier(tmp_path)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InvalidParameter, match=r"ends in \.pt"):
        load_classifier(tmp_path / "notes.txt")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(InvalidParameter, match="not a classifier file"):
        load_classifier(tmp_path / "text.pt")
    with zipfile.ZipFile(tmp_path / "other.pt2", "w") as archive:  # a zip, not a program
        archive.writestr("data.txt", "hello")
    with pytest.raises(InvalidParameter, match="not in a subdirectory") as refused:
        load_classifier(tmp_path / "other.pt2")  # torch's reason, not its "see the warnings"
    assert "not a classifier file" in str(refused.value)
    assert "Traceback" not in capfd.readouterr().err  # torch.export's logged one stays quiet
    plain = torch.jit.script(torch.nn.Linear(2, 2))  # TorchScript without class names
    torch.jit.save(plain, str(tmp_path / "plain.pt"))
    with pytest.raises(InvalidParameter, match="has no class names"):
        load_classifier(tmp_path / "plain.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "weights.pt")  # not "likely corrupted"
    with pytest.raises(InvalidParameter, match=r"weights.pt: a checkpoint of torch.save \(weights, "
                                               r"no code\), not a TorchScript module; not a classifier"):  # fmt: skip
        load_classifier(tmp_path / "weights.pt")


def test_pixels_the_file_refuses_are_one_line(tiny_classifier, tmp_path):
    loaded = load_classifier(save_classifier(tiny_classifier, tmp_path / "clf.pt"))
    with pytest.raises(InvalidParameter, match=r"clf\.pt refused the photo: .*divide 8-bit"):
        loaded(torch.full((1, 3, 8, 8), 200.0))


class _Foreign(torch.nn.Module):
    """A TorchScript file with class names that capsight did not build."""

    def __init__(self, labels: list[str], logits: bool | str, flat: bool) -> None:
        super().__init__()
        self.labels = labels
        self.logits, self.flat, self.nan = logits is True, flat, logits == "nan"

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        scores = images.mean(dim=(2, 3))[:, :2] * 7.0  # (N, 2)
        if self.nan:  # a bit-flipped file: "rows sum to nan-nan" was all it said
            return scores * float("nan")
        if self.flat:
            return scores.flatten()
        return scores if self.logits else torch.softmax(scores, dim=1)


@pytest.mark.parametrize(
    "logits, flat, fragment",
    [
        (
            False,
            True,
            r"foreign.pt: answered \(4,\) where a classifier gives \(N, 2\) class probabilities",
        ),
        (True, False, "its scores are not probabilities"),
        (
            "nan",
            False,
            r"foreign.pt: its scores are not numbers \(NaN or infinite\), as a damaged file's are",
        ),
    ],
)
def test_a_file_that_answers_no_probabilities_is_one_line(tmp_path, logits, flat, fragment):
    path = tmp_path / "foreign.pt"
    torch.jit.save(torch.jit.script(_Foreign(["a", "b"], logits, flat)), str(path))
    loaded = load_classifier(path)
    with pytest.raises(InvalidParameter, match=fragment):
        loaded(torch.rand(2, 3, 8, 8))
    path = tmp_path / "fine.pt"
    torch.jit.save(torch.jit.script(_Foreign(["a", "b"], False, False)), str(path))
    assert load_classifier(path)(torch.rand(2, 3, 8, 8)).shape == (2, 2)


@pytest.mark.parametrize("path", [None, b"x.pt", ["x.pt"], 3, ""])
def test_a_classifier_path_of_the_wrong_kind_is_one_line(path, tiny_classifier):
    """(pathlib's TypeError from inside, before; "" had meant the current folder.)"""
    from capsight.classify.export import save_classifier

    with pytest.raises(InvalidParameter, match="the classifier file must be a path"):
        load_classifier(path)
    with pytest.raises(InvalidParameter, match="the classifier's output must be a path"):
        save_classifier(tiny_classifier, path)
