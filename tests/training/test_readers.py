"""Dataset readers, each format from a tiny generated fixture."""

from __future__ import annotations

import io
import json
import os
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from capsight.errors import DatasetError, InputNotFound, InvalidParameter
from capsight.training.readers import (
    fetch_conceptual_captions,
    read_coco_captions,
    read_conceptual_captions,
    read_corpus,
    read_karpathy_split,
)
from capsight.training.readers.conceptual_captions import FAILURES_FILE, cache_file_name


def _photo(path, color=(200, 30, 30), size=(64, 48)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)


def _write_json(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def _sentence(raw):
    return {"raw": raw, "tokens": raw.lower().rstrip(" .").split()}


def test_karpathy_flickr_layout(tmp_path):
    data = {
        "dataset": "flickr8k",
        "images": [
            {"filename": "a.jpg", "split": "train", "sentences": [_sentence("A dog runs ."), _sentence("A dog .")]},
            {"filename": "b.jpg", "split": "val", "sentences": [{"tokens": ["a", "cat"]}]},
            {"filename": "c.jpg", "split": "test", "sentences": [_sentence("A man .")]},
            {"filename": "d.jpg", "split": "test", "sentences": []},
            {"filename": "e.jpg", "split": "test"},
            {"filename": "f.jpg", "split": "test", "sentences": "a dog"},
        ],
    }  # fmt: skip
    path = _write_json(tmp_path / "dataset_flickr8k.json", data)
    corpus = read_karpathy_split(path, tmp_path / "Flicker8k_Dataset")
    assert corpus.name == "flickr8k"
    assert corpus.notes == ["3 images without a caption left out"]  # counted, as the docs say
    assert corpus.splits == {"train": ["a.jpg"], "val": ["b.jpg"], "test": ["c.jpg"]}
    assert corpus.images["a.jpg"].captions == ("A dog runs .", "A dog .")
    assert corpus.images["b.jpg"].captions == ("a cat",)  # tokens when there is no raw text
    assert corpus.images["a.jpg"].path == tmp_path / "Flicker8k_Dataset" / "a.jpg"


def test_karpathy_coco_layout_merges_restval_and_finds_subfolders(tmp_path):
    entries = [
        ("train2014", "COCO_train2014_1.jpg", "train"),
        ("val2014", "COCO_val2014_2.jpg", "restval"),
        ("val2014", "COCO_val2014_3.jpg", "test"),
    ]
    data = {"images": [
        {"filepath": sub, "filename": name, "split": split, "sentences": [_sentence("A bus .")]}
        for sub, name, split in entries
    ]}  # fmt: skip
    for sub, name, _ in entries:
        _photo(tmp_path / "coco" / sub / name)
    path = _write_json(tmp_path / "dataset_coco.json", data)
    corpus = read_karpathy_split(path, tmp_path / "coco")
    assert corpus.splits["train"] == ["COCO_train2014_1.jpg", "COCO_val2014_2.jpg"]
    assert all(img.path.is_file() for img in corpus.images.values())
    kept = read_karpathy_split(path, tmp_path / "coco", restval="restval")
    assert kept.splits["restval"] == ["COCO_val2014_2.jpg"]
    # Photos all in one folder (no train2014/val2014 subfolders) work too.
    for _, name, _ in entries:
        _photo(tmp_path / "flat" / name)
    flat = read_karpathy_split(path, tmp_path / "flat")
    assert all(img.path.parent == tmp_path / "flat" for img in flat.images.values())
    # Sentences given as plain strings are the sentences ("no image has any caption" before).
    data["images"][0]["sentences"] = ["A red bus .", {"raw": "A bus ."}]
    plain = read_karpathy_split(_write_json(tmp_path / "strings.json", data), tmp_path / "coco")
    assert plain.images["COCO_train2014_1.jpg"].captions == ("A red bus .", "A bus .")
    # The first photo missing: the layout is the one the others are found in (the first alone
    # had decided it, and every photo was looked for in flat/train2014).
    (tmp_path / "flat" / "COCO_train2014_1.jpg").unlink()
    flat = read_karpathy_split(path, tmp_path / "flat")
    assert all(img.path.parent == tmp_path / "flat" for img in flat.images.values())
    assert flat.images["COCO_val2014_3.jpg"].path.is_file()
    # A photo listed twice in its subfolder, as every real dataset_coco.json names one: refused
    # (it had been kept under a second key, "val2014/...", trained on and tested on both).
    data["images"].append({**data["images"][2], "split": "train"})
    twice = _write_json(tmp_path / "twice.json", data)
    for root in ("coco", "flat"):
        with pytest.raises(
            DatasetError, match=r"#3 \(.*COCO_val2014_3.jpg\) is listed twice \(as image #2"
        ):
            read_karpathy_split(twice, tmp_path / root)
    # Namesakes in two subfolders are two photos, each under a key of its own.
    data["images"][3] = {**data["images"][2], "filepath": "train2014", "split": "train"}
    _photo(tmp_path / "coco" / "train2014" / "COCO_val2014_3.jpg")
    both = read_karpathy_split(_write_json(tmp_path / "namesakes.json", data), tmp_path / "coco")
    assert both.splits["train"][-1] == "train2014/COCO_val2014_3.jpg"


def test_coco_official_annotations_find_their_photo_folder(tmp_path):
    data = {
        "images": [
            {"id": 1, "file_name": "000000000001.jpg"},
            {"id": 2, "file_name": "000000000002.jpg"},
            {"id": 3, "file_name": "000000000003.jpg"},  # no caption: left out
        ],
        "annotations": [
            {"id": 10, "image_id": 2, "caption": "A red bus\n on a street."},
            {"id": 11, "image_id": 1, "caption": "A cat."},
            {"id": 12, "image_id": 2, "caption": "A bus."},
        ],
    }
    (tmp_path / "val2017").mkdir()
    path = _write_json(tmp_path / "annotations" / "captions_val2017.json", data)
    corpus = read_coco_captions(path)
    assert corpus.splits == {"val": ["000000000001.jpg", "000000000002.jpg"]}
    assert corpus.images["000000000002.jpg"].captions == ("A red bus on a street.", "A bus.")
    assert corpus.images["000000000001.jpg"].path == tmp_path / "val2017" / "000000000001.jpg"
    assert read_corpus(path).splits == corpus.splits  # format told from the content
    # An annotation given twice is one reference (CIDEr had counted its words twice); the
    # same words under another id are another person's caption, and kept.
    data["annotations"] += [data["annotations"][2], {**data["annotations"][2], "id": 14}]
    twice = read_coco_captions(
        _write_json(tmp_path / "annotations" / "captions_val2017.json", data)
    )
    assert twice.images["000000000002.jpg"].captions == (
        "A red bus on a street.",
        "A bus.",
        "A bus.",
    )
    assert twice.notes[0] == "1 annotation given twice (the same id and caption) left out"
    del data["annotations"][3:]

    data["annotations"].append({"id": 13, "image_id": 99, "caption": "ghost"})
    trimmed = _write_json(tmp_path / "annotations" / "captions_train2017.json", data)
    corpus = read_coco_captions(trimmed, tmp_path / "val2017")  # (its 'images' cut to a subset)
    assert "1 caption of 1 image id not in 'images' left out (first: 99)" in corpus.notes
    data["annotations"].pop()
    with pytest.raises(InputNotFound, match="photo folder"):  # no train2017 folder beside it
        read_coco_captions(_write_json(tmp_path / "annotations" / "captions_train2017.json", data))


def test_plain_folder_and_flickr8k_text_through_read_corpus(tmp_path):
    root = tmp_path / "flickr"
    for name in ("a.jpg", "b.jpg"):
        _photo(root / "images" / name)
    _write_json(root / "captions.json", {"a.jpg": ["A dog ."], "b.jpg": ["A cat .", "Cat ."]})
    _write_json(root / "splits.json", {"train": ["a.jpg"], "test": ["b.jpg"]})
    corpus = read_corpus(root)
    assert corpus.split("test")[0].captions == ("A cat .", "Cat .")
    assert corpus.split("test")[0].path == root / "images" / "b.jpg"
    # The dataset folder given as the photo folder: photos are still found in its images/.
    assert (
        read_corpus(root / "captions.json", root).images["a.jpg"].path == root / "images" / "a.jpg"
    )
    elsewhere = read_corpus(root / "captions.json", tmp_path / "other")
    assert elsewhere.images["a.jpg"].path == tmp_path / "other" / "a.jpg"
    assert elsewhere.splits == corpus.splits

    other = _write_json(tmp_path / "refs.json", {"x.jpg": "one caption", "y.jpg": ["two"]})
    mapping = read_corpus(other, tmp_path)
    assert mapping.images["x.jpg"].captions == ("one caption",)
    assert sorted(mapping.splits["train"]) == ["x.jpg", "y.jpg"]
    # as a folder's captions.json without splits.json
    assert "split by a hash of each name" in mapping.notes[-1]

    text = tmp_path / "Flickr8k_text"
    text.mkdir()
    (text / "Flickr8k.token.txt").write_text("a.jpg#0\tA dog .\na.jpg#1\tA brown dog .\n")
    (text / "Flickr_8k.testImages.txt").write_text("a.jpg\n")
    flickr = read_corpus(text / "Flickr8k.token.txt", root / "images")
    assert flickr.split("test")[0].captions == ("A dog .", "A brown dog .")
    assert flickr.split("test")[0].path == root / "images" / "a.jpg"


def test_captions_without_a_word_are_left_out_in_every_format_and_said(tmp_path):
    """Emoji, punctuation or another script tokenise to nothing: kept, they trained as empty
    sentences, and a photo with only such references crashed pycocoevalcap's CIDEr."""
    root = tmp_path / "emo"
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        _photo(root / "images" / name)
    _write_json(root / "captions.json", {"a.jpg": ["A dog .", "\U0001f436\U0001f436"],
                                         "b.jpg": ["\U0001f600 !", "..."], "c.jpg": ["A cat ."]})  # fmt: skip
    _write_json(root / "splits.json", {"train": ["a.jpg", "b.jpg"], "test": ["c.jpg"]})
    corpus = read_corpus(root)
    assert corpus.images["a.jpg"].captions == ("A dog .",)
    assert "b.jpg" not in corpus.images and corpus.splits["train"] == ["a.jpg"]
    assert corpus.notes[-2:] == [
        "emo: 3 captions with no word left out (blank, emoji or punctuation only, or not in Latin letters)",
        "emo: 1 photo with no such caption left out (first: b.jpg)",
    ]
    tsv = tmp_path / "cc.tsv"  # a blank Conceptual Captions caption was kept as a reference
    tsv.write_text("A dog on a beach .\thttp://x/1.jpg\n   \thttp://x/2.jpg\n")
    cache = tmp_path / "cache"
    for number in (1, 2):
        _photo(cache / cache_file_name(f"http://x/{number}.jpg"))
    assert [i.captions for i in read_corpus(tsv, cache).images.values()] == [
        ("A dog on a beach .",)
    ]
    _write_json(
        root / "captions.json",
        {k: ["Собака бежит по снегу ."] for k in ("a.jpg", "b.jpg", "c.jpg")},
    )
    with pytest.raises(
        DatasetError, match=r"or in another script \(Cyrillic, .*\), which is not supported"
    ):
        read_corpus(root)


def test_the_wrong_kind_of_coco_file_is_named(tmp_path):
    boxes = _write_json(tmp_path / "instances_val2017.json", {
        "images": [{"id": 1, "file_name": "1.jpg"}],
        "annotations": [{"id": 5, "image_id": 1, "bbox": [0, 0, 9, 9], "category_id": 18}]})  # fmt: skip
    with pytest.raises(DatasetError, match="COCO object annotations .boxes, not captions.; give"):
        read_corpus(boxes)  # was "malformed COCO entry (missing 'caption'); re-download it"
    info = _write_json(
        tmp_path / "image_info_test2017.json", {"images": [{"id": 1, "file_name": "1.jpg"}]}
    )
    with pytest.raises(DatasetError, match="COCO image information without captions"):
        read_corpus(info)  # was read as a Karpathy file: "image #0 has no 'filename'"


def test_a_folder_holding_a_caption_file_names_it(tmp_path):
    folder = tmp_path / "karpathy"
    _write_json(folder / "dataset_flickr8k.json", {"images": []})
    with pytest.raises(
        InputNotFound, match=r"a folder holding dataset_flickr8k.json; give that file itself"
    ):
        read_corpus(folder)


def test_malformed_files_are_dataset_errors(tmp_path):
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(DatasetError, match="not valid JSON"):
        read_corpus(tmp_path / "broken.json")
    for name in ("captions.json", "mine.json"):  # as train and eval both read a file or its folder
        with pytest.raises(
            DatasetError, match=r"has no photos with captions \(an empty JSON object\)"
        ):
            read_corpus(_write_json(tmp_path / name, {}))
    with pytest.raises(DatasetError, match="Karpathy"):
        read_karpathy_split(_write_json(tmp_path / "k.json", {"images": [1, 2]}))
    with pytest.raises(DatasetError, match="unknown caption format"):
        read_corpus(_write_json(tmp_path / "x.csv", {}))
    with pytest.raises(InputNotFound):
        read_corpus(tmp_path / "missing.json")
    twice = {"images": [{"filename": "a.jpg", "split": s, "sentences": [{"raw": "A dog ."}]}
                        for s in ("train", "test")]}  # fmt: skip
    with pytest.raises(DatasetError, match="listed twice"):
        read_karpathy_split(_write_json(tmp_path / "twice.json", twice))
    raw_number = {"images": [{"filename": "a.jpg", "sentences": [{"raw": 7}]}]}
    with pytest.raises(DatasetError, match="'raw' should be text"):
        read_karpathy_split(_write_json(tmp_path / "raw.json", raw_number))
    coco = {
        "images": [{"id": 1, "file_name": "a.jpg"}],
        "annotations": [{"id": 9, "image_id": 1, "caption": None}],
    }
    with pytest.raises(DatasetError, match="annotation 9 has no caption text"):
        read_corpus(_write_json(tmp_path / "captions_val2017.json", coco), tmp_path)
    listed_id = {"images": [{"id": [1], "file_name": "a.jpg"}], "annotations": []}
    with pytest.raises(DatasetError, match=r"malformed COCO entry \(a value of the wrong type\)"):
        read_corpus(_write_json(tmp_path / "captions_train2017.json", listed_id), tmp_path)
    with pytest.raises(
        DatasetError, match="'images' should be a list of photo entries .* not 'dict'"
    ):
        read_corpus(_write_json(tmp_path / "dataset_x.json", {"images": {"a.jpg": ["a dog"]}}))


# -- Conceptual Captions against a local web server ----------------------------------------


def _png_bytes(color, size=(600, 400)):
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture()
def photo_server(monkeypatch):
    for name in (
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ):
        monkeypatch.delenv(name, raising=False)
    files = {"/red.png": _png_bytes((255, 0, 0)), "/blue.png": _png_bytes((0, 0, 255)),
             "/page.html": b"<html>not a photo</html>", "/a%20b.png": _png_bytes((0, 255, 0)),
             "/caf%C3%A9.png": _png_bytes((0, 255, 255))}  # fmt: skip
    # path -> (status, Location): answers other than a photo
    answers = {"/loop": (302, "/loop"), "/to-file": (302, "file:///etc/passwd"),
               "/busy": (429, None), "/gone": (410, None)}  # fmt: skip
    requests: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            if self.path in answers:
                status, location = answers[self.path]
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", requests
    server.shutdown()
    server.server_close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_conceptual_captions_fetch_is_forgiving_and_resumable(tmp_path, photo_server):
    base, requests = photo_server
    unreachable = f"http://127.0.0.1:{_closed_port()}/x.jpg"
    tsv = tmp_path / "Validation_GCC-1.1.0-Validation.tsv"
    tsv.write_text(
        "caption\turl\n"  # a header row is skipped
        f"a red square\t{base}/red.png\n"
        f"a blue square\t{base}/blue.png\n"
        f"a missing photo\t{base}/gone.jpg\n"
        f"a web page\t{base}/page.html\n"
        f"a dead host\t{unreachable}\n"
        f"the red square again\t{base}/red.png\n"
    )
    cache = tmp_path / "cache"
    report = fetch_conceptual_captions(tsv, cache, timeout=5, workers=2)
    assert (report.rows, report.fetched, report.cached, report.failed) == (5, 2, 0, 3)
    assert report.failures == {"HTTP 404": 1, "network error": 1, "not an image": 1}
    red = Image.open(cache / cache_file_name(f"{base}/red.png"))
    assert min(red.size) == 256 and red.getpixel((10, 10))[0] > 240  # shrunk, still red
    remembered = (cache / FAILURES_FILE).read_text()
    assert "gone.jpg\tHTTP 404" in remembered and unreachable not in remembered

    # A second run fetches nothing again and skips the permanent failures.
    before = len(requests)
    again = fetch_conceptual_captions(tsv, cache, timeout=5, workers=2)
    assert (again.fetched, again.cached, again.skipped_known_failures) == (0, 2, 2)
    assert again.failures == {"network error": 1}  # network errors are retried
    assert len(requests) == before

    corpus = read_conceptual_captions(tsv, cache)
    assert list(corpus.splits) == ["val"] and len(corpus) == 2
    red_key = cache_file_name(f"{base}/red.png")
    assert corpus.images[red_key].captions == ("a red square", "the red square again")
    assert corpus.notes == [f"{tsv.name}: 3 of 6 rows have no fetched photo in {cache}; left out"]
    assert read_corpus(tsv, cache).images.keys() == corpus.images.keys()


def test_the_fetch_reads_urls_as_a_browser_does_and_remembers_only_lasting_failures(
    tmp_path, photo_server
):
    """A space in a URL had been a "network error" on every run, "/café.jpg" a permanent "bad
    URL", a refused redirect an "HTTP 302" retried for ever, and a 429 (a photo host's "slow
    down") a failure remembered for good."""
    base, requests = photo_server
    shouted = "HTTP://" + base.removeprefix("http://")  # (the scheme in capitals: still a URL)
    tsv = tmp_path / "train.tsv"
    tsv.write_text(
        f"a green square\t{base}/a b.png\n"
        f"a cyan square\t {base}/caf\u00e9.png\n"  # a stray space before the URL: still a row
        f"a red square\t{shouted}/red.png\n"
        f"\t{base}/blue.png\n"  # no caption: left out, not fetched
        f"a loop\t{base}/loop\n"
        f"a file\t{base}/to-file\n"
        f"too fast\t{base}/busy\n"
        f"gone\t{base}/gone\n",
        encoding="utf-8",
    )
    cache = tmp_path / "cache"
    report = fetch_conceptual_captions(tsv, cache, timeout=5, workers=2)
    assert report.notes == ["1 row not 'caption<TAB>http(s) URL' left out (first: line 4: "
                            "expected 'caption<TAB>http(s) URL', got an empty caption)"]  # fmt: skip
    assert (report.fetched, report.failures) == (3, {"HTTP 410": 1, "HTTP 429": 1,
                                                     "redirect loop": 1, "redirected off HTTP": 1})  # fmt: skip
    assert "/blue.png" not in requests
    remembered = (cache / FAILURES_FILE).read_text()
    assert "/busy" not in remembered and remembered.count("\n") == 3
    # the one a rerun tries again, named with its reason (it had been counted only)
    assert (cache / "retry.tsv").read_text() == f"{base}/busy\tHTTP 429\n"
    # --retry-failed lists each failure once (it had written them all again), none that worked
    again = fetch_conceptual_captions(tsv, cache, timeout=5, workers=2, retry_failed=True)
    assert again.cached == 3 and (cache / FAILURES_FILE).read_text().count("\n") == 3
    (tmp_path / "one.tsv").write_text(f"a green square\t{base}/a b.png\n")
    fetch_conceptual_captions(tmp_path / "one.tsv", cache, timeout=5, workers=2)
    assert not (cache / "retry.tsv").exists()  # a run with nothing to try again: no list
    # A lasting failure that fails for a passing reason when retried leaves failures.tsv for
    # retry.tsv: listed in both, a plain rerun had skipped what retry.tsv said it would try.
    with (cache / FAILURES_FILE).open("a") as log:
        log.write(f"{base}/busy\tHTTP 404\n")
    fetch_conceptual_captions(tsv, cache, timeout=5, workers=2, retry_failed=True)
    assert f"{base}/busy" not in (cache / FAILURES_FILE).read_text()
    assert (cache / "retry.tsv").read_text() == f"{base}/busy\tHTTP 429\n"
    # An empty file in the cache is no photo; --verify fetches again one that does not decode.
    green = cache / cache_file_name(f"{base}/a b.png")
    red = cache / cache_file_name(f"{shouted}/red.png")
    green.write_bytes(b"")
    red.write_bytes(red.read_bytes()[:200])
    third = fetch_conceptual_captions(tsv, cache, timeout=5, workers=2)
    assert (third.fetched, third.cached, third.damaged) == (1, 2, 0) and green.stat().st_size
    checked = fetch_conceptual_captions(tsv, cache, timeout=5, workers=2, verify=True)
    assert (checked.fetched, checked.cached, checked.damaged) == (1, 2, 1)
    assert Image.open(red).size[1] == 256
    green.write_bytes(b"")  # an empty file is no photo to train on either
    assert cache_file_name(f"{base}/a b.png") not in read_conceptual_captions(tsv, cache).images


def test_the_fetch_checks_its_timeout_and_limit_and_refuses_an_empty_file(tmp_path, capsys):
    """--timeout -1 had been a ValueError for every URL, each remembered for good as a "bad
    URL"; an empty TSV and --limit 0 "fetched 0" and exited 0."""
    from capsight._cli.tools.conceptual_captions import main

    tsv = tmp_path / "train.tsv"
    tsv.write_text("a photo\thttp://127.0.0.1:9/0.jpg\n")
    for timeout in (-1, 0, float("nan")):
        with pytest.raises(InvalidParameter, match="timeout must be a number of seconds > 0"):
            fetch_conceptual_captions(tsv, tmp_path / "cache", timeout=timeout)
    assert not (tmp_path / "cache" / FAILURES_FILE).exists()
    assert main([str(tsv), str(tmp_path / "cache"), "--limit", "0"]) == 2
    assert (
        capsys.readouterr().err
        == "error: limit must be a whole number of rows >= 1 (None: all), got 0\n"
    )
    (tmp_path / "empty.tsv").write_text("\n")
    assert main([str(tmp_path / "empty.tsv"), str(tmp_path / "cache")]) == 2
    assert "empty.tsv: no rows; a Conceptual Captions TSV has" in capsys.readouterr().err


def test_conceptual_captions_stops_early_when_offline(tmp_path):
    port = _closed_port()
    tsv = tmp_path / "train.tsv"
    tsv.write_text("".join(f"photo {i}\thttp://127.0.0.1:{port}/{i}.jpg\n" for i in range(20)))
    report = fetch_conceptual_captions(
        tsv, tmp_path / "cache", workers=1, max_network_errors_in_a_row=3
    )
    assert report.stopped_early is not None and "offline" in report.stopped_early
    assert report.failed < 20
    # Every URL tried before the errors in a row ran out (4 rows queued at once): not "stopped
    # early", as it had been said of 90 URLs all tried
    few = tmp_path / "few.tsv"
    few.write_text("".join(f"photo {i}\thttp://127.0.0.1:{port}/{i}.jpg\n" for i in range(4)))
    report = fetch_conceptual_captions(
        few, tmp_path / "cache", workers=1, max_network_errors_in_a_row=3
    )
    assert report.failed == 4 and report.stopped_early is None
    with pytest.raises(DatasetError, match="fetch them first"):
        read_conceptual_captions(tsv, tmp_path / "cache")
    with pytest.raises(DatasetError, match="is in .*elsewhere, which does not exist; fetch them"):
        read_conceptual_captions(tsv, tmp_path / "elsewhere")  # (a mistyped cache folder)
    (tmp_path / "bad.tsv").write_text("just a caption without url\n")
    with pytest.raises(DatasetError, match="caption<TAB>"):
        fetch_conceptual_captions(tmp_path / "bad.tsv", tmp_path / "cache")
    (tmp_path / "empty.tsv").write_text("")
    with pytest.raises(DatasetError, match="empty.tsv: no rows"):
        read_conceptual_captions(tmp_path / "empty.tsv", tmp_path / "cache")


def test_the_fetch_command_fails_when_no_photo_could_be_fetched(tmp_path, capsys):
    from capsight._cli.tools.conceptual_captions import main

    tsv = tmp_path / "train.tsv"
    tsv.write_text(f"a photo\thttp://127.0.0.1:{_closed_port()}/0.jpg\n")
    assert main([str(tsv), str(tmp_path / "cache"), "--timeout", "2"]) == 1
    err = capsys.readouterr().err
    assert "fetched 0, 0 already cached, 1 failed (1 network error)" in err
    assert "error: none of the 1 photos is in" in err
    other = tmp_path / "other.tsv"  # the two arguments swapped: the cache "folder" is a file
    other.write_text("x\n")
    assert main([str(other), str(tsv)]) == 2  # was a FileExistsError traceback
    assert (
        capsys.readouterr().err
        == f"error: {tsv}: is a file; the photo cache is a folder (the TSV comes first, then the folder)\n"
    )


def test_ctrl_c_drops_the_queued_photos_and_says_how_to_go_on(
    tmp_path, photo_server, monkeypatch, capsys
):
    """The pool used to fetch every queued photo (minutes, offline) before Ctrl-C took effect,
    then print a traceback."""
    from capsight.training.readers import conceptual_captions as cc

    base, requests = photo_server
    tsv = tmp_path / "train.tsv"
    tsv.write_text("".join(f"photo {i}\t{base}/red.png?{i}\n" for i in range(40)))

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cc, "wait", interrupted)  # Ctrl-C while the first photos are under way
    from capsight._cli.tools.conceptual_captions import main

    assert main([str(tsv), str(tmp_path / "cache"), "--quiet"]) == 130
    err = capsys.readouterr().err
    assert (
        err.startswith("interrupted: the photos fetched so far stay in") and "Traceback" not in err
    )
    assert len(requests) < 40  # the queued ones were never fetched


def test_ctrl_c_ends_the_fetch_command_without_waiting_for_the_downloads_under_way(tmp_path):
    """After its "interrupted" line the command had sat silent until each download under way
    timed out (up to 6 x --timeout), and a second Ctrl-C printed a threading traceback."""
    import signal
    import subprocess
    import sys

    reached, release = threading.Event(), threading.Event()

    class Silent(BaseHTTPRequestHandler):
        def do_GET(self):
            reached.set()
            release.wait(120)  # a server that never answers, until the test is done

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Silent)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    tsv = tmp_path / "train.tsv"
    tsv.write_text(f"a photo\thttp://127.0.0.1:{server.server_address[1]}/0.jpg\n")
    command = [sys.executable, "-m", "capsight.training.readers.conceptual_captions", str(tsv),
               str(tmp_path / "cache"), "--timeout", "100", "--quiet"]  # fmt: skip
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True,
                               env={k: v for k, v in os.environ.items() if "proxy" not in k.lower()})  # fmt: skip
    try:
        assert reached.wait(60)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=50)  # (the download under way would take 100 s)
    finally:
        process.kill()
        release.set()
        server.shutdown()
        server.server_close()
    assert process.returncode == 130 and err.startswith("interrupted: ") and "Traceback" not in err


def test_conceptual_captions_redirects_stay_on_public_http_and_a_fetch_has_a_deadline(monkeypatch):
    """A photo URL could redirect to ftp:// or to 169.254.169.254; a server sending a byte a
    second held a worker as long as it liked."""
    import io
    import urllib.request

    from capsight.training.readers import conceptual_captions as cc

    real_resolve = socket.getaddrinfo

    # names without DNS: this machine may have none, or a sinkhole
    def resolve(host, *args, **kwargs):
        if host.endswith("example.com"):
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", 0))]
        return real_resolve(host, *args, **kwargs)  # the numeric forms need no DNS

    monkeypatch.setattr(cc.socket, "getaddrinfo", resolve)

    handler = cc._CheckedRedirects()

    def follow(origin, target):
        request = urllib.request.Request(origin)
        return handler.redirect_request(request, None, 302, "Found", {}, target)

    assert follow("http://photos.example.com/a.jpg", "https://cdn.example.com/a.jpg") is not None
    for target, why in (("ftp://example.com/a.jpg", "redirected off HTTP"),
                        ("http://169.254.169.254/latest/meta-data", "redirected to a local address"),
                        ("http://localhost:8000/admin", "redirected to a local address"),
                        ("http://10.0.0.7/a.jpg", "redirected to a local address")):  # fmt: skip
        with pytest.raises(cc._PermanentFailure, match=why):
            follow("http://photos.example.com/a.jpg", target)
    # a local mirror
    assert follow("http://127.0.0.1:8000/a.jpg", "http://127.0.0.1:8000/b.jpg") is not None

    for numeric in ("http://127.1/a.jpg", "http://2130706433/a.jpg", "http://0x7f000001/a.jpg"):
        with pytest.raises(cc._PermanentFailure, match="redirected to a local address"):
            follow("http://photos.example.com/a.jpg", numeric)  # all of them connect to 127.0.0.1

    class Dripping(io.BytesIO):
        """A socket that has one byte at a time: read(n) would wait for all n."""

        def read(self, size=-1):
            raise AssertionError("read(n) waits for n bytes, past the deadline")

        def read1(self, size=-1):
            return super().read1(1)

    with pytest.raises(TimeoutError):
        cc._read_until(Dripping(b"x" * 100), deadline=time.monotonic() - 1)
    assert cc._read_until(io.BytesIO(b"y" * 10), deadline=time.monotonic() + 60) == b"y" * 10
    big = cc._read_until(io.BytesIO(b"z" * (cc._MAX_BYTES + 10)), deadline=time.monotonic() + 60)
    assert len(big) == cc._MAX_BYTES + 1  # enough to tell it is too large, no more


def test_a_redirect_is_checked_again_on_the_address_it_connects_to(
    tmp_path, photo_server, monkeypatch
):
    """DNS rebinding: a redirect's host named a public address when it was checked and a local
    one when it was connected to; the photo was fetched from the local address."""
    from capsight.training.readers import conceptual_captions as cc

    base, requests = photo_server  # on 127.0.0.1

    class Redirect(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(302)
            self.send_header("Location", f"{base}/red.png")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.2", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        tsv = tmp_path / "train.tsv"
        tsv.write_text(f"a red square\thttp://127.0.0.2:{server.server_address[1]}/photo.jpg\n")
        # Both ends local (a local mirror): followed.
        mirror = fetch_conceptual_captions(tsv, tmp_path / "mirror", timeout=5, workers=1)
        assert (mirror.fetched, mirror.failures) == (1, {})
        # The origin public and the name check fooled: the connection's own address refuses it.
        monkeypatch.setattr(cc, "_is_local", lambda url: False)
        real = cc._is_local_address
        monkeypatch.setattr(cc, "_is_local_address", lambda ip: ip != "127.0.0.2" and real(ip))
        before = len(requests)
        report = fetch_conceptual_captions(tsv, tmp_path / "cache", timeout=5, workers=1)
        assert (report.fetched, report.failures) == (0, {"redirected to a local address": 1})
        assert len(requests) == before  # nothing was asked of the local server
    finally:
        server.shutdown()
        server.server_close()


def test_an_https_peer_is_checked_before_the_tls_handshake(monkeypatch):
    """The check must come before any bytes of the handshake reach a refused address: the
    server below never answers, so a handshake first would end in a timeout, not the refusal."""
    from capsight.training.readers import conceptual_captions as cc

    class Refused(Exception):
        pass

    def refuse(connection):
        raise Refused(connection.sock.getpeername())

    monkeypatch.setattr(cc, "_check_peer", refuse)
    with socket.create_server(("127.0.0.1", 0)) as silent:
        connection = cc._PeerCheckedHTTPS("127.0.0.1", silent.getsockname()[1], timeout=3)
        with pytest.raises(Refused):
            connection.connect()
        connection.close()


def test_behind_a_proxy_the_connection_is_not_peer_checked(monkeypatch):
    """Through a proxy the socket reaches the proxy (often on a private address), not the
    photo's host: checking it would refuse every photo."""
    import http.client
    import urllib.request

    from capsight.training.readers import conceptual_captions as cc

    used = []
    for base in (urllib.request.HTTPHandler, urllib.request.HTTPSHandler):
        monkeypatch.setattr(
            base, "do_open", lambda self, http_class, req, **kw: used.append(http_class)
        )
    for handler, plain, checked, scheme in (
        (cc._HTTPHandler(), http.client.HTTPConnection, cc._PeerCheckedHTTP, "http"),
        (cc._HTTPSHandler(), http.client.HTTPSConnection, cc._PeerCheckedHTTPS, "https"),
    ):
        used.clear()
        direct = urllib.request.Request(f"{scheme}://example.com/a.jpg")
        proxied = urllib.request.Request(f"{scheme}://example.com/a.jpg")
        proxied.set_proxy("10.0.0.1:3128", scheme)
        handler.do_open(plain, direct)
        handler.do_open(plain, proxied)
        assert used == [checked, plain]


def test_a_photo_named_in_the_other_unicode_form_is_found(tmp_path):
    """captions.json says "café.jpg" composed (NFC); macOS names the file decomposed (NFD):
    the two look alike and had been "no such file" to train and eval."""
    import unicodedata

    composed = unicodedata.normalize("NFC", "café.jpg")
    _photo(tmp_path / "images" / unicodedata.normalize("NFD", composed))
    _photo(tmp_path / "images" / "plain.jpg")
    _write_json(tmp_path / "captions.json",
                {composed: ["a red square"], "plain.jpg": ["a red square too"]})  # fmt: skip
    corpus = read_corpus(tmp_path)
    assert corpus.images[composed].path.is_file()


def test_a_file_name_too_long_for_the_file_system_is_a_missing_photo(tmp_path):
    """One 300-character name in a Karpathy file had stopped the whole training run
    ("file name too long"); it is left out and counted as other missing photos are."""
    from capsight.training.train import with_photo_files

    _photo(tmp_path / "images" / "a.jpg")
    images = [{"filename": name, "split": "train", "sentences": [_sentence("a red square")]}
              for name in ("a.jpg", "x" * 300 + ".jpg")]  # fmt: skip
    data = _write_json(tmp_path / "dataset_flickr8k.json", {"images": images})
    corpus = with_photo_files(read_corpus(data, tmp_path / "images"), str(data))
    assert list(corpus.images) == ["a.jpg"]
    assert any(note.startswith("1 photo has no file and is left out") for note in corpus.notes)


def test_the_drawn_splits_note_counts_the_photos_that_have_a_file(tmp_path):
    """ "no split given: 14 photos split into 11 train, 1 val and 2 test", then "2 photos have no
    file": the split's note had counted the two photos that were left out."""
    from capsight.training.train import with_photo_files

    names = [f"{i}.jpg" for i in range(14)]
    for name in names[:12]:
        _photo(tmp_path / "images" / name)
    _write_json(tmp_path / "captions.json", {name: ["a red square"] for name in names})
    corpus = with_photo_files(read_corpus(tmp_path), str(tmp_path))
    drawn = next(n for n in corpus.notes if n.startswith("no split given"))
    kept = {name: len(keys) for name, keys in corpus.splits.items()}
    assert sum(kept.values()) == 12 and drawn.startswith("no split given: 12 photos split")
    assert f"into {kept['train']} train, {kept['val']} val and {kept['test']} test" in drawn
