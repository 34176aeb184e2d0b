"""POST /v1/captions: captions, options, timings, and every way an upload can be wrong."""

from __future__ import annotations

import pytest


def _files(*items: tuple[str, bytes]) -> list:
    return [("images", (name, data, "application/octet-stream")) for name, data in items]


def test_captions_two_images_in_order(client, cat_jpeg, coffee_png):
    r = client.post("/v1/captions", files=_files(("cat.jpg", cat_jpeg), ("cup.png", coffee_png)))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "labels"
    assert [x["filename"] for x in body["results"]] == ["cat.jpg", "cup.png"]
    cat, cup = body["results"]
    assert "cat" in cat["caption"]
    assert any(w in cup["caption"] for w in ("cup", "espresso", "coffee"))
    assert cat["labels"] and 0 < cat["labels"][0]["probability"] <= 1
    assert (cat["width"], cat["height"]) == (320, 213)
    t = body["timings_ms"]
    assert t["total"] >= t["inference"] > 0 and t["decode"] > 0


def test_a_blank_image_is_said_to_be_blank(client, cat_jpeg):
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 10, 10)).save(buffer, format="PNG")
    body = client.post(
        "/v1/captions", files=_files(("dark.png", buffer.getvalue()), ("cat.jpg", cat_jpeg))
    ).json()
    dark, cat = body["results"]
    assert dark["caption"] == "a blank image" and dark["blank"] is True and dark["score"] is None
    assert cat["blank"] is False and "cat" in cat["caption"]
    assert dark["note"] is None and cat["note"] is None


def test_an_image_too_small_to_describe_gets_a_note(client, cat_jpeg):
    """The CLI said a 20000x20 strip's caption was a guess; the API said nothing."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.open(io.BytesIO(cat_jpeg)).resize((600, 20)).save(buffer, format="PNG")
    body = client.post("/v1/captions", files=_files(("strip.png", buffer.getvalue()))).json()
    assert body["results"][0]["note"].startswith(
        "600x20 px, only 20 on its short side (under 32): too small"
    )


def test_an_animation_says_only_its_first_frame_was_described(client, cat_jpeg):
    """A GIF that fades in from black was "a blank image", with nothing said of its frames."""
    import io

    from PIL import Image

    cat = Image.open(io.BytesIO(cat_jpeg)).convert("RGB")
    flipped = cat.transpose(Image.Transpose.FLIP_LEFT_RIGHT)  # (Pillow merges equal frames)
    for first in (Image.new("RGB", cat.size), cat):
        buffer = io.BytesIO()
        first.save(buffer, format="GIF", save_all=True, append_images=[flipped], duration=100)
        result = client.post("/v1/captions", files=_files(("a.gif", buffer.getvalue()))).json()
        note = result["results"][0]["note"]
        assert note.startswith("an animation (or a file of several pages): only its first frame")
        assert note.endswith("capsight video reads every frame of a GIF")
    # which capsight video does not read as a video: no such advice (an audit, 2026-12-08)
    buffer = io.BytesIO()
    cat.save(buffer, format="WEBP", save_all=True, append_images=[flipped], duration=100)
    note = client.post("/v1/captions", files=_files(("a.webp", buffer.getvalue()))).json()[
        "results"][0]["note"]  # fmt: skip
    assert note == "an animation (or a file of several pages): only its first frame is described"
    buffer = io.BytesIO()
    cat.save(buffer, format="GIF")  # one frame: nothing to say
    assert client.post("/v1/captions", files=_files(("a.gif", buffer.getvalue()))).json()[
        "results"][0]["note"] is None  # fmt: skip


def test_a_stopping_server_answers_a_waiting_caption_request_at_once(
    make_app, started, scripted_engine, cat_jpeg, monkeypatch
):
    """On SIGTERM a request waiting for its captions was cut off after the shutdown's 10 s of
    grace with a plain-text 500."""
    import threading

    held = threading.Event()
    monkeypatch.setattr(scripted_engine, "describe", lambda *a, **k: held.wait(30))
    try:
        for client in started(make_app(request_timeout_s=60)):
            threading.Timer(0.5, scripted_engine.stop_waiting).start()  # as `capsight serve` does
            r = client.post("/v1/captions", files=_files(("cat.jpg", cat_jpeg)))
            assert r.status_code == 503 and r.headers["retry-after"] == "30"
            assert r.json()["error"] == (
                "the server is stopping; send the request again once it is back"
            )
    finally:
        held.set()
    from capsight.server.batching import BatcherStopping

    def dropped(*args, **kwargs):  # dropped from the caption queue (it had been a 500)
        raise BatcherStopping("the server is stopping")

    monkeypatch.setattr(scripted_engine, "describe", dropped)
    for client in started(make_app()):
        r = client.post("/v1/captions", files=_files(("cat.jpg", cat_jpeg)))
        assert r.status_code == 503 and r.headers["retry-after"] == "30"


def test_decoding_options_the_labels_model_ignores_are_noted(client, cat_jpeg):
    import warnings

    from capsight.captioning.facade import DecodingIgnored

    sent = {"method": "sample", "num_captions": "3"}
    with warnings.catch_warnings():
        warnings.simplefilter("error", DecodingIgnored)  # the note says it; no warning in the log
        body = client.post("/v1/captions", files=_files(("cat.jpg", cat_jpeg)), data=sent).json()
    assert body["model"] == "labels" and body["decoding"] is None  # nothing was decoded
    assert body["note"].startswith(
        "the labels model ignores decoding options (method, num_captions)"
    )
    assert body["results"][0]["alternatives"] == []
    plain = client.post("/v1/captions", files=_files(("cat.jpg", cat_jpeg))).json()
    assert plain["note"] is None


def test_content_type_is_judged_by_content_not_name(client, cat_jpeg):
    r = client.post("/v1/captions", files=_files(("notes.txt", cat_jpeg)))
    assert r.status_code == 200
    r = client.post("/v1/captions", files=_files(("photo.jpg", b"just some text\n" * 20)))
    assert r.status_code == 415
    assert "photo.jpg" in r.json()["error"] and "text" in r.json()["error"]


@pytest.mark.parametrize(
    "payload, status, fragment",
    [
        (
            b"\xff\xd8\xff\xe0" + b"\x00" * 40,
            400,
            "x.jpg: starts like a JPEG image but cannot be read",
        ),  # JPEG magic only
        (b"", 400, "empty"),
        (b"%PDF-1.7 ...", 415, "PDF"),
    ],
)
def test_bad_images_get_clear_4xx(client, payload, status, fragment):
    r = client.post("/v1/captions", files=_files(("x.jpg", payload)))
    assert r.status_code == status
    assert fragment.lower() in r.json()["error"].lower()


def test_truncated_jpeg_is_400(client, cat_jpeg):
    r = client.post("/v1/captions", files=_files(("cut.jpg", cat_jpeg[: len(cat_jpeg) // 3])))
    assert r.status_code == 400
    assert "cut.jpg" in r.json()["error"] and "truncated" in r.json()["error"]


def test_decompression_bomb_is_refused(client, bomb_png):
    assert len(bomb_png) < 100_000
    r = client.post("/v1/captions", files=_files(("huge.png", bomb_png)))
    assert r.status_code == 400
    assert "too large" in r.json()["error"]


def test_missing_field_and_bad_options_are_422(client, cat_jpeg):
    r = client.post("/v1/captions")
    assert r.status_code == 422 and "images" in r.json()["error"]
    r = client.post("/v1/captions", data={"beam_width": "0"}, files=_files(("a.jpg", cat_jpeg)))
    assert r.status_code == 422 and "beam_width" in r.json()["error"]
    r = client.post("/v1/captions", data={"model": "nope"}, files=_files(("a.jpg", cat_jpeg)))
    assert r.status_code == 422 and "nope" in r.json()["error"]
    # a seed that would change nothing
    for data in ({"seed": "1"}, {"method": "beam", "seed": "1"}):
        r = client.post("/v1/captions", data=data, files=_files(("a.jpg", cat_jpeg)))
        assert r.status_code == 422 and "method=sample" in r.json()["error"]
    # options the chosen method would silently ignore
    for data in (
        {"method": "greedy", "temperature": "0.5"},
        {"top_p": "0.9"},
        {"method": "beam", "top_k": "5"},
    ):
        r = client.post("/v1/captions", data=data, files=_files(("a.jpg", cat_jpeg)))
        assert r.status_code == 422 and "method=sample" in r.json()["error"]


def test_too_many_images(make_app, cat_jpeg):
    from fastapi.testclient import TestClient

    with TestClient(make_app(max_images=2)) as c:  # no model needed: refused before captioning
        r = c.post("/v1/captions", files=_files(*[(f"{i}.jpg", cat_jpeg) for i in range(3)]))
    assert r.status_code == 422 and "at most 2" in r.json()["error"]


def test_a_length_penalty_ranks_the_beams(client, cat_jpeg):
    """length_penalty, which the CLI and Python take, had been "not a field of /v1/captions"."""
    sent = {"model": "show-attend-tell", "num_captions": "3", "beam_width": "3"}
    r = client.post("/v1/captions", data={**sent, "length_penalty": "2"},
                    files=_files(("a.jpg", cat_jpeg)))  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["decoding"]["length_penalty"] == 2
    import capsight

    expected = capsight.caption([cat_jpeg], model="show-attend-tell", decoding=capsight.DecodingOptions(
        method="beam", beam_width=3, num_captions=3, length_penalty=2.0))[0]  # fmt: skip
    got = r.json()["results"][0]
    assert [got["caption"], *got["alternatives"]] == [expected.text, *expected.alternatives]
    r = client.post("/v1/captions", data={**sent, "length_penalty": "9"},
                    files=_files(("a.jpg", cat_jpeg)))  # fmt: skip
    assert r.status_code == 422 and "length_penalty" in r.json()["error"]
    r = client.post("/v1/captions", data={"method": "sample", "length_penalty": "1",
                                          "model": "show-attend-tell"},
                    files=_files(("a.jpg", cat_jpeg)))  # fmt: skip
    assert r.status_code == 422 and "does not use length_penalty" in r.json()["error"]


def test_decoding_options_are_echoed(client, cat_jpeg):
    r = client.post(
        "/v1/captions",
        data={
            "method": "sample",
            "temperature": "0.7",
            "num_captions": "3",
            "seed": "1",
            "model": "show-attend-tell",
        },
        files=_files(("a.jpg", cat_jpeg)),
    )
    assert r.status_code == 200, r.text
    decoding = r.json()["decoding"]
    assert decoding["method"] == "sample" and decoding["num_captions"] == 3
    assert decoding["temperature"] == pytest.approx(0.7)
    # sampling keeps no beams
    assert "beam_width" not in decoding and "length_penalty" not in decoding
    r = client.post("/v1/captions", data={"method": "sample", "model": "show-attend-tell"},
                    files=_files(("a.jpg", cat_jpeg)))  # fmt: skip
    # sampling's default, as documented
    assert r.json()["decoding"]["temperature"] == pytest.approx(0.7)
    for method in ("sample", "greedy", "narrowing"):  # the photo default: its own beam width is 4
        r = client.post("/v1/captions", data={"method": method, "model": "show-attend-tell-pair"},
                        files=_files(("a.jpg", cat_jpeg)))  # fmt: skip
        assert r.status_code == 200 and r.json()["decoding"]["method"] == method, r.text


def test_the_original_projects_narrowing_schedule_is_served_too(client, cat_jpeg):
    """The CLI had --narrowing; the API refused method=narrowing."""
    sent = {
        "method": "narrowing",
        "top_k": "4",
        "seed": "3",
        "num_captions": "2",
        "model": "show-attend-tell",
    }
    first = client.post("/v1/captions", data=sent, files=_files(("a.jpg", cat_jpeg)))
    assert first.status_code == 200, first.text
    decoding = first.json()["decoding"]
    assert decoding["method"] == "narrowing" and decoding["top_k"] == 4 and decoding["seed"] == 3
    again = client.post("/v1/captions", data=sent, files=_files(("a.jpg", cat_jpeg)))
    assert again.json()["results"] == first.json()["results"]  # seeded: the same words
    sent.pop("top_k")  # its default starting width is echoed as what it is, not as 0
    assert (
        client.post("/v1/captions", data=sent, files=_files(("a.jpg", cat_jpeg))).json()[
            "decoding"
        ]["top_k"]
        == 5
    )
    for extra, says in (
        ({"temperature": "0.5"}, "takes top_k (its starting width) and seed only"),
        ({"top_k": "0"}, "at least 1"),
    ):
        r = client.post("/v1/captions", data={**sent, **extra}, files=_files(("a.jpg", cat_jpeg)))
        assert r.status_code == 422 and says in r.json()["error"], extra


@pytest.mark.parametrize("method", ["greedy", "sample"])
def test_a_beam_width_without_beam_search_is_refused(client, cat_jpeg, method):
    r = client.post(
        "/v1/captions",
        data={"method": method, "beam_width": "7"},
        files=_files(("a.jpg", cat_jpeg)),
    )
    assert r.status_code == 422 and r.json()["error"].startswith("beam_width needs method=beam")


def test_the_echo_of_beam_search_leaves_out_the_sampling_options(client, cat_jpeg):
    r = client.post("/v1/captions", data={"method": "beam", "beam_width": "2", "model": "show-attend-tell"},
                    files=_files(("a.jpg", cat_jpeg)))  # fmt: skip
    assert r.status_code == 200, r.text
    decoding = r.json()["decoding"]
    assert (
        decoding["beam_width"] == 2
        and not {"temperature", "top_k", "top_p", "seed"} & decoding.keys()
    )


def test_partial_decoding_keeps_the_models_own_beam_width(client, cat_jpeg):
    """Only num_captions set: the photo default keeps its beam 4, and the echo says so."""
    r = client.post("/v1/captions", data={"model": "show-attend-tell-pair", "num_captions": "2"},
                    files=_files(("a.jpg", cat_jpeg)))  # fmt: skip
    assert r.status_code == 200, r.text
    decoding = r.json()["decoding"]
    assert (
        decoding["method"] == "beam"
        and decoding["beam_width"] == 4
        and decoding["num_captions"] == 2
    )


def test_a_request_that_times_out_while_queued_is_never_computed(
    make_app, started, scripted_engine, cat_jpeg
):
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from capsight.server.batching import CaptionBatcher

    release, ran = threading.Event(), []

    def slow(images, model, decoding, num_labels):
        ran.append(len(images))
        release.wait(10)  # the first batch holds the only worker past the time limit
        return []

    batcher = scripted_engine._batcher = CaptionBatcher(slow, workers=1)
    for client in started(make_app(request_timeout_s=0.5)):
        with ThreadPoolExecutor(2) as pool:
            files = _files(("cat.jpg", cat_jpeg))
            first = pool.submit(client.post, "/v1/captions", files=files)
            while not ran:
                threading.Event().wait(0.01)
            second = pool.submit(client.post, "/v1/captions", files=files)
            assert first.result(10).status_code == 504
            assert second.result(10).status_code == 504
            release.set()
            threading.Event().wait(0.2)
    assert ran == [1] and batcher.expired == 1  # the queued one never ran


def test_a_beam_width_for_a_model_that_does_not_search_by_beam_is_refused(
    client, cat_jpeg, monkeypatch
):
    """No method sent, the model's own is greedy (a checkpoint trained so): beam_width would do nothing."""
    from capsight.captioning.options import DecodingOptions

    engine = client.app.state.engine
    monkeypatch.setattr(
        engine, "decoding_for", lambda model, decoding: DecodingOptions(method="greedy")
    )
    r = client.post("/v1/captions", data={"beam_width": "3"}, files=_files(("a.jpg", cat_jpeg)))
    assert r.status_code == 422 and r.json()["error"].startswith("beam_width needs method=beam (")
    assert "this request decodes by greedy with " in r.json()["error"]


def test_fewer_captions_than_asked_and_a_caption_cut_short_are_noted(client, cat_jpeg):
    """The CLI noted both; the API had answered alternatives [] and a one-word caption in
    silence."""
    sure = {"model": "show-attend-tell", "method": "sample", "temperature": "0.01",
            "num_captions": "3", "seed": "1"}  # fmt: skip
    r = client.post("/v1/captions", data=sure, files=_files(("a.jpg", cat_jpeg)))
    assert r.status_code == 200, r.text
    result = r.json()["results"][0]
    assert result["alternatives"] == [] and result["note"] == (
        "1 distinct caption of the 3 asked for: the model was sure of its answer (a higher "
        "temperature, or a larger top_k or top_p, varies more)"
    )
    cut = {"model": "show-attend-tell", "max_length": "2"}
    r = client.post("/v1/captions", data=cut, files=_files(("a.jpg", cat_jpeg)))
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["note"] == (
        "the caption reached max_length 2, where a caption is ended, finished or not"
    )
    r = client.post("/v1/captions", data={"model": "show-attend-tell"},
                    files=_files(("a.jpg", cat_jpeg)))  # fmt: skip
    assert r.json()["results"][0]["note"] is None  # nothing sent: nothing to say


def test_the_shortfall_advice_speaks_the_api_s_field_names():
    from capsight.captioning.options import DecodingOptions
    from capsight.captioning.shortfall import API_SPELLING, fewer_reason

    said = fewer_reason(DecodingOptions(method="narrowing"), API_SPELLING)
    assert "a larger top_k, the schedule's starting width, or method=sample with a higher " \
           "temperature" in said and "--" not in said  # fmt: skip


def test_an_unseeded_sample_echoes_the_seed_it_drew_so_it_can_be_replayed(client, cat_jpeg):
    sent = {"model": "show-attend-tell", "method": "sample", "num_captions": "3"}
    first = client.post("/v1/captions", data=sent, files=_files(("a.jpg", cat_jpeg))).json()
    seed = first["decoding"]["seed"]  # had been null: a good draw could not be had again
    assert isinstance(seed, int) and 0 <= seed < 2**31
    again = client.post("/v1/captions", data={**sent, "seed": str(seed)},
                        files=_files(("a.jpg", cat_jpeg))).json()  # fmt: skip
    assert again["decoding"]["seed"] == seed and again["results"] == first["results"]
    beam = client.post("/v1/captions", data={"model": "show-attend-tell", "beam_width": "2"},
                       files=_files(("a.jpg", cat_jpeg))).json()  # fmt: skip
    assert "seed" not in beam["decoding"]  # beam search draws nothing
    # A seed the CLI took (up to 2**63 - 1) replays here too (the API had stopped at 2**31 - 1).
    big = {**sent, "seed": str(2**40)}
    r = client.post("/v1/captions", data=big, files=_files(("a.jpg", cat_jpeg)))
    assert r.status_code == 200 and r.json()["decoding"]["seed"] == 2**40
    r = client.post(
        "/v1/captions", data={**sent, "seed": str(2**63)}, files=_files(("a.jpg", cat_jpeg))
    )
    assert r.status_code == 422
