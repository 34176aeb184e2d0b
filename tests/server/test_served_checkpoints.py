"""``capsight serve --captioner NAME=FOLDER``: a user's trained checkpoint served by name.

Requests, the page's menus and ``--model`` name it; no client ever names a path."""

from __future__ import annotations

import shutil

import pytest

import capsight.captioning.base as base
from capsight.captioning import MODELS_DIR
from capsight.errors import InvalidParameter, ModelNotFound
from capsight.server.engine import serve_checkpoints
from capsight.server.settings import ServerSettings


@pytest.fixture(autouse=True)
def own_registry(monkeypatch):
    """Each test registers into a copy of the captioner registry, dropped afterwards (the
    built-in captioners registered first, so that none registers into the copy alone)."""
    base._import_builtin_captioners()
    monkeypatch.setattr(base, "_REGISTRY", dict(base._REGISTRY))


@pytest.fixture
def run_folder(tmp_path):
    """A `capsight train` run folder whose best/ is the shipped show-and-tell."""
    run = tmp_path / "my run"
    shutil.copytree(MODELS_DIR / "show-and-tell", run / "best")
    return run


@pytest.mark.parametrize("entries, message", [
    ("mine", "give NAME=FOLDER, e.g. mine=runs/sat/best"),
    ("mine=", "give NAME=FOLDER"),
    ("my model=runs/x", "a name is letters, digits"),
    ("a=x;a=y", "'a' is given twice"),
    ("default=runs/x", "'default' is a name capsight uses"),
])  # fmt: skip
def test_a_malformed_entry_is_one_line_at_start_up(entries, message):
    with pytest.raises(InvalidParameter, match=r"^--captioner \(or CAPSIGHT_CAPTIONERS\) '") as e:
        ServerSettings(captioners=entries)
    assert message in str(e.value)


def test_a_folder_without_a_checkpoint_or_a_taken_name_is_refused(tmp_path, run_folder):
    with pytest.raises(ModelNotFound, match=r"^--captioner mine=.*nope: no such folder$"):
        serve_checkpoints({"mine": str(tmp_path / "nope")})
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFound, match="no trained checkpoint there"):
        serve_checkpoints({"mine": str(tmp_path / "empty")})
    with pytest.raises(ModelNotFound, match="'labels' is a captioner capsight has already"):
        serve_checkpoints({"labels": str(run_folder)})
    # A checkpoint missing its weights or vocabulary had been served, every request naming
    # it failing (and, as --model, every request at all); now it is refused at start-up.
    for missing in ("model.safetensors", "vocab.json"):
        broken = tmp_path / f"no-{missing}"
        shutil.copytree(run_folder, broken)
        (broken / "best" / missing).unlink()
        with pytest.raises(
            ModelNotFound,
            match=rf"^--captioner mine=.*: .*no {missing}; the checkpoint is incomplete",
        ):
            serve_checkpoints({"mine": str(broken)})


@pytest.mark.slow  # loads a captioner
def test_a_served_checkpoint_is_named_by_clients_and_listed_without_its_path(
    make_app, started, cat_jpeg, run_folder
):
    app = make_app(captioners=f"mine={run_folder}")
    for client in started(app):
        listed = {c["name"]: c for c in client.get("/v1/models").json()["captioners"]}
        assert listed["mine"]["available"] and "/" not in listed["mine"]["checkpoint"]
        r = client.post("/v1/captions", data={"model": "mine"},
                        files={"images": ("cat.jpg", cat_jpeg, "image/jpeg")})  # fmt: skip
        assert r.status_code == 200, r.text
        assert r.json()["model"] == "mine" and r.json()["results"][0]["caption"]
        # a path is still no name a client may give
        r = client.post("/v1/captions", data={"model": str(run_folder)},
                        files={"images": ("cat.jpg", cat_jpeg, "image/jpeg")})  # fmt: skip
        assert r.status_code == 422 and "unknown captioner" in r.json()["error"], r.text
    # a second app in this process (a restart in tests) registers the same folder again
    make_app(captioners=f"mine={run_folder}")


def test_serve_refuses_a_bad_captioner_flag_in_one_line(tmp_path, monkeypatch, capsys):
    from tests.server.test_app import _serve

    status = _serve(["--captioner", f"mine={tmp_path / 'nope'}", "--job-dir", str(tmp_path)],
                    monkeypatch)  # fmt: skip
    err = capsys.readouterr().err
    assert (
        status == 2
        and err.startswith("capsight: error: --captioner mine=")
        and (len(err.splitlines()) == 1)
    )


def test_the_flag_may_name_the_default_model(tmp_path, run_folder):
    from capsight._cli.main import build_parser
    from capsight._cli.serve import settings_from_args
    from capsight.server.engine import check_servable

    args = build_parser().parse_args(["serve", "--captioner", f"mine={run_folder}",
                                      "--captioner", f"other={run_folder}", "--model", "mine"])  # fmt: skip
    settings = settings_from_args(args, {"CAPSIGHT_CAPTIONERS": "ignored=x"})
    assert settings.served_checkpoints == {"mine": str(run_folder), "other": str(run_folder)}
    serve_checkpoints(settings.served_checkpoints)
    check_servable("mine")  # --model mine is taken
