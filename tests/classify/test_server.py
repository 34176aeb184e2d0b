"""``POST /v1/classify`` and ``POST /v1/classifiers`` through the real app."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from capsight.server.app import create_app  # noqa: E402
from capsight.server.engine import Engine  # noqa: E402
from capsight.server.settings import ServerSettings  # noqa: E402


class ReadyEngine(Engine):
    """The classify routes use their own cached engine; the captioning one need not load."""

    def _load(self) -> None:
        self.load_seconds = 0.0
        self._ready.set()


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    settings = ServerSettings(job_dir=tmp_path_factory.mktemp("jobs"), ui=False)
    with TestClient(create_app(settings, ReadyEngine("labels"))) as c:
        yield c


@pytest.fixture(scope="module")
def cat_png(photo) -> bytes:
    buf = io.BytesIO()
    photo("chelsea").save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def cat_jpeg_bytes(photo) -> bytes:
    buf = io.BytesIO()
    photo("chelsea").save(buf, format="JPEG")
    return buf.getvalue()


def test_classify_endpoint(client, cat_png):
    r = client.post(
        "/v1/classify",
        files=[("images", ("cat.png", cat_png, "image/png"))],
        data={"classes": "cat, dog, car", "top": "2"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["engine"] == "offline" and body["classes"] == 3
    (result,) = body["results"]
    assert result["filename"] == "cat.png"
    assert [t["label"] for t in result["top"]][0] == "cat"
    assert len(result["top"]) == 2
    assert result["note"] is None


def test_a_blank_or_animated_upload_gets_a_note(client, cat_png, photo):
    """Classify had said nothing of a blank image or an animation's first frame, where
    /v1/captions notes both (an audit, 2026-12-08)."""
    from PIL import Image

    blank, frames = io.BytesIO(), io.BytesIO()
    Image.new("RGBA", (300, 200), (0, 0, 0, 0)).save(blank, format="PNG")
    cat = photo("chelsea")
    cat.save(frames, format="GIF", save_all=True, append_images=[cat.rotate(90)], duration=100)
    r = client.post("/v1/classify", data={"classes": "cat, dog, car"}, files=[
        ("images", ("blank.png", blank.getvalue(), "image/png")),
        ("images", ("anim.gif", frames.getvalue(), "image/gif")),
        ("images", ("cat.png", cat_png, "image/png"))])  # fmt: skip
    assert r.status_code == 200, r.text
    notes = [x["note"] for x in r.json()["results"]]
    assert notes[0].startswith("a blank image (one flat colour)")
    assert "only its first frame is classified" in notes[1] and notes[2] is None


def test_classify_notes_classes_it_cannot_tell_apart_and_refuses_huge_lists_first(client, cat_png):
    r = client.post("/v1/classify", files=[("images", ("cat.png", cat_png, "image/png"))],
                    data={"classes": "猫, 狗, cat"})  # fmt: skip
    assert r.status_code == 200, r.text
    assert "'猫', '狗' look the same to the engine" in r.json()["note"]
    huge = ",".join(f"class{i}" for i in range(60_000))  # counted before it is checked further
    r = client.post("/v1/classify", files=[("images", ("cat.png", cat_png, "image/png"))],
                    data={"classes": huge})  # fmt: skip
    assert r.status_code == 422 and r.json()["error"] == "classes: at most 5000 classes per request"


@pytest.mark.parametrize(
    ("data", "files", "status"),
    [
        ({"classes": " , "}, None, 422),
        ({"classes": "cat,dog", "template": "no placeholder"}, None, 422),
        ({"classes": "cat,dog"}, [("images", ("a.png", b"not an image", "image/png"))], 415),
        ({"classes": "/etc/passwd, cat"}, None, 200),  # class names, never a file the server reads
    ],
)
def test_classify_bad_requests(client, cat_png, data, files, status, fake_text_embedder):
    files = files or [("images", ("cat.png", cat_png, "image/png"))]
    r = client.post("/v1/classify", files=files, data=data)
    assert r.status_code == status, r.text
    if status != 200:
        assert "error" in r.json()


def test_a_class_list_sent_as_a_file_or_with_odd_names_is_refused_in_one_line(client, cat_png):
    image = ("images", ("cat.png", cat_png, "image/png"))
    r = client.post(
        "/v1/classify", files=[image, ("classes", ("mine.txt", b"cat\ndog\n", "text/plain"))]
    )
    assert r.status_code == 422
    assert r.json()["error"] == ("classes: sent as a file, where text belongs; curl -F "
                                 "'classes=<FILE' sends a file's text as the field")  # fmt: skip
    for classes, says in (("ant\x01, bee, cat", "holds a control character"),
                          ("caf\u00e9, cafe\u0301, ant", "class list repeats café"),
                          ("z" * 100_000 + ", cat", "has 100,000 characters; at most 200")):  # fmt: skip
        r = client.post("/v1/classify", files=[image], data={"classes": classes})
        assert r.status_code == 422 and says in r.json()["error"], classes
        assert len(r.json()["error"]) < 200


def test_templates_are_limited_in_count_length_and_prompts(client, cat_png):
    """999 templates were about an hour of CPU a request: ImageNet's names go under each."""
    image = ("images", ("cat.png", cat_png, "image/png"))

    def post(classes, templates):
        return client.post("/v1/classify", files=[image, *[("template", (None, t)) for t in templates]],
                           data={"classes": classes})  # fmt: skip

    r = post("cat, dog", [f"a photo {i} of a {{}}." for i in range(17)])
    assert (
        r.status_code == 422
        and r.json()["error"] == "template: at most 16 templates per request, got 17"
    )
    r = post("cat, dog", ["a {} " + "x" * 300])
    assert r.status_code == 422 and "has 305 characters; at most 200" in r.json()["error"]
    many = ", ".join(f"thing {i}" for i in range(1001))
    r = post(many, [f"a photo {i} of a {{}}." for i in range(15)])
    assert r.status_code == 422 and r.json()["error"].startswith(
        "template: 1,001 classes under 15 templates make 15,015 prompts; at most 15,000"
    )
    r = client.post(
        "/v1/classifiers", data={"classes": "cat, dog", "template": "a {} " + "y" * 300}
    )
    assert r.status_code == 422 and "at most 200" in r.json()["error"]
    r = post("cat, dog", [""])  # a blank template alone: said, not the default put in its place
    assert r.status_code == 422 and "no template given" in r.json()["error"]
    r = client.post("/v1/classify", files=[image, ("template", ("t.txt", b"a {}", "text/plain"))],
                    data={"classes": "cat, dog"})  # fmt: skip
    assert r.status_code == 422 and "curl -F 'template=<FILE'" in r.json()["error"]


@pytest.mark.slow
def test_build_and_download_a_classifier(client, tmp_path):
    r = client.post("/v1/classifiers", data={"classes": "cat, dog, car", "format": "torchscript"})
    assert r.status_code == 200, r.text
    assert r.headers["x-capsight-classes"] == "3"
    assert 'filename="classifier.pt"' in r.headers["content-disposition"]
    assert "x-capsight-note" not in r.headers
    # Classes the file cannot tell apart are said, as `capsight classifier build` says them.
    alike = client.post("/v1/classifiers", data={"classes": "猫, 狗, car"})
    assert alike.status_code == 200 and alike.headers["x-capsight-note"].startswith(
        "the classes '\\u732b', '\\u72d7' look the same to the engine")  # fmt: skip
    many = client.post(
        "/v1/classifiers", data={"classes": ", ".join(chr(0x4E00 + i) for i in range(300))}
    )
    note = many.headers["x-capsight-note"]  # 300 names alike: cut, not tens of kB a proxy refuses
    assert many.status_code == 200 and len(note) <= 2000 and note.endswith(" ... (cut short)")
    path = tmp_path / "clf.pt"
    path.write_bytes(r.content)
    code = (
        "import sys, torch; sys.modules['capsight'] = None; "
        f"m = torch.jit.load({str(path)!r}); print(list(m.labels), tuple(m(torch.rand(1, 3, 50, 60)).shape))"
    )
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-1000:]
    assert out.stdout.strip() == "['cat', 'dog', 'car'] (1, 3)"


@pytest.mark.slow
def test_the_same_class_list_asked_for_again_is_not_exported_again(client, monkeypatch):
    """Each request had exported the file anew (~10 s for a .pt2)."""
    from capsight.classify import export

    saved = []
    save = export.save_classifier
    monkeypatch.setattr(
        export, "save_classifier", lambda clf, path, *a: saved.append(path) or save(clf, path, *a)
    )
    asked = {"classes": "mug, kettle, teapot", "template": "a photo of a {}, on a shelf."}
    first, again = (client.post("/v1/classifiers", data=asked) for _ in range(2))
    assert first.status_code == again.status_code == 200 and first.content == again.content
    assert len(saved) == 1
    # another format: its own file
    other = client.post("/v1/classifiers", data={**asked, "format": "export"})
    assert other.status_code == 200 and len(saved) == 2


def test_classifiers_needs_classes_or_examples(client):
    r = client.post("/v1/classifiers", data={"format": "torchscript"})
    assert r.status_code == 422


def test_templates_with_example_photos_alone_are_refused_as_the_cli_refuses_them(client, cat_png):
    """They fill in class names, and there are none: the file had been built with a note that
    named WordNet, which had read nothing."""
    photos = [("examples", (f"{c}/0.png", cat_png, "image/png")) for c in ("mug", "kettle")]
    r = client.post("/v1/classifiers", data={"template": "a photo of a {}."}, files=photos)
    assert r.status_code == 422 and r.json()["error"].startswith(
        "template: templates fill in class names"
    )


def test_one_named_class_alone_is_refused(client):
    r = client.post("/v1/classifiers", data={"classes": "kettle"})
    assert r.status_code == 422 and "single class" in r.json()["error"]


@pytest.mark.parametrize("data", [{}, {"classes": "kettle"}])
def test_example_photos_of_one_class_are_refused_in_the_api_s_words(client, cat_png, data):
    photos = [("examples", (f"mug/{i}.png", cat_png, "image/png")) for i in range(2)]
    r = client.post("/v1/classifiers", data=data, files=photos)
    assert r.status_code == 422
    message = r.json()["error"]
    assert "one class only ('mug')" in message
    assert "/tmp" not in message and "--" not in message  # no server path, no CLI flag


@pytest.mark.parametrize(
    "name, fragment",
    [
        (".hidden/0.png", "its folder '.hidden' cannot name a class (no leading '.'"),
        ("../0.png", "cannot name a class"),
        ("x" * 101 + "/0.png", "cannot name a class"),
    ],
)
def test_example_names_that_cannot_be_class_folders_are_refused(client, cat_png, name, fragment):
    photos = [
        ("examples", (name, cat_png, "image/png")),
        ("examples", ("dog/0.png", cat_png, "image/png")),
    ]
    r = client.post("/v1/classifiers", files=photos)
    assert r.status_code == 422 and fragment in r.json()["error"], r.text


def test_the_class_of_an_example_is_the_folder_it_is_in(client, cat_png):
    """ "a/b/c.png" became the class "a": a folder picked whole is sent as examples/<class>/..."""
    photos = [("examples", (f"examples/{name}/{i}.png", cat_png, "image/png"))
              for name in ("mug", "kettle") for i in range(2)]  # fmt: skip
    r = client.post("/v1/classifiers", files=photos)
    assert r.status_code == 200, r.text
    import io

    import torch

    assert sorted(torch.jit.load(io.BytesIO(r.content)).labels) == ["kettle", "mug"]


def test_a_damaged_example_photo_is_named_as_the_client_named_it(client, cat_jpeg_bytes):
    broken = cat_jpeg_bytes[: len(cat_jpeg_bytes) // 3]
    photos = [
        ("examples", ("cat/broken.jpg", broken, "image/jpeg")),
        ("examples", ("dog/0.jpg", cat_jpeg_bytes, "image/jpeg")),
    ]
    r = client.post("/v1/classifiers", files=photos)
    assert r.status_code == 400, r.text
    assert r.json()["error"].startswith("cat/broken.jpg: ") and "/tmp" not in r.json()["error"]
    # Named with its class folder: "a.txt" alone did not say which class's photo it was.
    photos[0] = ("examples", ("examples/cat/a.txt", b"not a photo\n", "text/plain"))
    r = client.post("/v1/classifiers", files=photos)
    assert r.status_code == 415 and r.json()["error"].startswith("cat/a.txt: "), r.text


def test_a_class_file_pasted_as_classes_keeps_its_comments_out(client, cat_png):
    """client_classes splits the text itself: the library's comment rule had not reached it."""
    r = client.post("/v1/classify", files={"images": ("cat.png", cat_png, "image/png")},
                    data={"classes": "# my list\r\ncat\r\ndog  # a pet\r\ncar, bus\r\n", "top": "10"})  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["classes"] == 4
    assert sorted(t["label"] for t in r.json()["results"][0]["top"]) == ["bus", "car", "cat", "dog"]


def test_templates_may_repeat_and_classes_may_not(client, cat_png):
    templates = ["a photo of a {}.", "a close-up of a {}."]
    r = client.post("/v1/classify", files={"images": ("cat.png", cat_png, "image/png")},
                    data={"classes": "cat,dog", "template": templates})  # fmt: skip
    assert r.status_code == 200, r.text
    r = client.post("/v1/classify", files={"images": ("cat.png", cat_png, "image/png")},
                    data={"classes": ["cat,dog", "car,bus"]})  # fmt: skip
    assert r.status_code == 422 and r.json()["error"] == "classes: given 2 times; send it once"
