"""The original Flask server's endpoints answer the requests its clients send, in its shapes."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from capsight.server.upload_form import form_page


def test_get_captions_answers_plain_text(client, cat_jpeg):
    r = client.post("/get_captions", files={"image": ("cat.png", cat_jpeg, "image/png")})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert "cat" in r.text and not r.text.startswith("{")


def test_get_captions_get_shows_the_upload_form(client):
    r = client.get("/get_captions")
    assert r.status_code == 200 and "name=image" in r.text and "multipart/form-data" in r.text


def test_get_image_caption_shape(client, cat_jpeg):
    r = client.post("/get_image_caption", files={"image": ("cat.jpg", cat_jpeg, "image/jpeg")})
    assert r.status_code == 200
    body = r.json()
    assert isinstance(body["captions"], str) and "cat" in body["captions"]
    grid = body["encoders_out"]  # (1, P, C) like the original's encoder_out.view(1, -1, 2048)
    assert len(grid) == 1 and len(grid[0]) == 49 and len(grid[0][0]) == 1280
    words = body["embedded_words"]  # one vector per word piece of the caption
    assert len(words) == len(body["words"]) >= 3 and all(len(v) == 384 for v in words)
    assert body["words"][-1] == "cat"
    assert body["note"] is None
    # an icon's caption is a guess, said here as /v1/captions says it (an audit, 2026-12-08)
    import io

    from PIL import Image

    icon = io.BytesIO()
    Image.open(io.BytesIO(cat_jpeg)).resize((20, 20)).save(icon, format="PNG")
    r = client.post("/get_image_caption", files={"image": ("i.png", icon.getvalue(), "image/png")})
    assert r.status_code == 200 and "too small to show what the caption says" in r.json()["note"]


def test_legacy_errors_are_json_4xx(client):
    r = client.post("/get_image_caption", files={"image": ("x.png", b"nope", "image/png")})
    assert r.status_code == 415 and "error" in r.json()
    r = client.post("/get_captions")
    assert r.status_code == 422 and "image" in r.json()["error"]


BROWSER = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def test_a_decoding_option_sent_to_an_original_endpoint_is_refused_not_ignored(client, cat_jpeg):
    """beam_width=0, method=bogus or method=sample had been answered with the default caption,
    whatever the value: the original endpoints decode as the server does."""
    image = {"image": ("cat.jpg", cat_jpeg, "image/jpeg")}
    r = client.post("/get_captions", files=image, data={"beam_width": "0", "method": "sample"})
    assert r.status_code == 422
    assert r.json()["error"] == ("beam_width, method: /get_captions runs the server's own "
                                 "captioner and decoding, as the original did; send them to POST "
                                 "/v1/captions")  # fmt: skip
    r = client.post("/get_image_caption?seed=1", files=image)
    assert r.status_code == 422 and r.json()["error"].startswith("seed: /get_image_caption ")
    # model=labels had been captioned by the server's model without a word, as decoding had
    r = client.post("/get_image_caption", files=image, data={"model": "labels"})
    assert r.status_code == 422 and r.json()["error"] == (
        "model: /get_image_caption runs the server's own captioner and decoding, as the original "
        "did; send it to POST /v1/captions"
    )
    assert client.post("/get_captions", files=image, data={"extra": "1"}).status_code == 200
    # /v1/captions reads length_penalty (it had refused it, where this answer sent it), and
    # refuses what no HTTP endpoint reads: said here instead of sending the client on
    r = client.post("/get_captions", files=image, data={"length_penalty": "1"})
    assert r.status_code == 422 and r.json()["error"].endswith("send it to POST /v1/captions")
    r = client.post("/get_captions", files=image, data={"no_repeat_trigram": "1", "seed": "2"})
    assert r.status_code == 422 and r.json()["error"] == (
        "seed: /get_captions runs the server's own captioner and decoding, as the original did; "
        "send it to POST /v1/captions; no_repeat_trigram: not an option of the HTTP API "
        "(DecodingOptions in Python only); leave it out"
    )


def test_the_upload_form_shows_a_refused_upload_as_a_page_not_json(client):
    # A browser that pressed Upload with no file chosen, or chose a PDF: the form again with
    # one line above it, in the error's status; curl and other clients keep their JSON.
    r = client.post("/get_captions", files={"image": ("", b"", "application/octet-stream")},
                    headers=BROWSER)  # fmt: skip
    assert r.status_code == 422 and r.headers["content-type"].startswith("text/html")
    assert "role=alert" in r.text and "image: " in r.text and "name=image" in r.text
    pdf = {"image": ("a.pdf", b"%PDF-1.4 hello", "application/pdf")}
    r = client.post("/get_captions", files=pdf, headers=BROWSER)
    assert r.status_code == 415 and "a.pdf: not an image" in r.text
    r = client.post("/get_captions", files=pdf)
    assert r.status_code == 415 and r.json()["error"].startswith("a.pdf: not an image")
    # Only the form's own page: the JSON endpoints answer JSON to a browser as well.
    r = client.post("/get_image_caption", files=pdf, headers=BROWSER)
    assert r.status_code == 415 and "error" in r.json()
    assert "&lt;b&gt;" in form_page("<b>") and "<b>" not in form_page("<b>")


def test_get_video_captions_with_query_parameters(client, tiny_video):
    # As the original Shiny page sent it: the file in the form, the parameters in the URL.
    with open(tiny_video, "rb") as f:
        r = client.post(
            "/get_video_captions",
            params={"every_n_second": 1, "rolling_window_size": 2, "metric": "euclidian"},
            files={"video": ("clip.mp4", f, "video/mp4")},
        )
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["captions"]) == len(body["distance_from_previous"]) == len(body["times"]) == 4
    assert body["times"] == [0.0, 1.0, 2.0, 3.0]
    assert body["distance_from_previous"][0] == 0.0  # no previous frame: 0, as the original
    assert all(isinstance(x, float) for x in body["distance_from_previous"])
    assert body["model"] == "scripted"  # the captioner that ran, as the analysis records it
    job = client.get(f"/v1/jobs/{body['job_id']}").json()
    assert job["params"]["metric"] == "euclidean" and job["params"]["window"] == 2


def test_get_video_captions_with_form_fields(client, tiny_video):
    with open(tiny_video, "rb") as f:
        r = client.post(
            "/get_video_captions",
            data={"every_n_second": "0.5", "metric": "cosine"},
            files={"video": ("clip.mp4", f, "video/mp4")},
        )
    assert r.status_code == 200, r.text
    assert len(r.json()["captions"]) == 7
    job = client.get(f"/v1/jobs/{r.json()['job_id']}").json()
    assert job["params"]["metric"] == "cosine"
    video = ("clip.mp4", Path(tiny_video).read_bytes(), "video/mp4")
    # no metric: capsight's default, not the original's
    r = client.post("/get_video_captions", files={"video": video})
    assert client.get(f"/v1/jobs/{r.json()['job_id']}").json()["params"]["metric"] == "cosine"
    # The original's 10 s on a 3.5 s clip: one frame, nothing to compare, and the answer says so.
    assert len(r.json()["captions"]) == 1
    assert (
        "only one moment was sampled" in r.json()["note"] and "every_n_second" in r.json()["note"]
    )
    # The same note when the job is polled on /v1 (as after a 504): the original's field names,
    # which the client sent, not /v1/videos' "every"
    polled = client.get(f"/v1/jobs/{r.json()['job_id']}").json()["summary"]["note"]
    assert "every_n_second" in polled, polled
    r1 = client.post("/v1/videos", data={"every": "10"}, files={"video": video})
    for _ in range(600):  # (at most a minute)
        if (job := client.get(f"/v1/jobs/{r1.json()['id']}").json())["status"] == "done":
            break
        time.sleep(0.1)
    assert "every_n_second" not in job["summary"]["note"] and "every" in job["summary"]["note"]
    assert (
        client.post(  # 7 moments, the 3 before each 1.5 s of video: nothing to say
            "/get_video_captions", data={"every_n_second": "0.5"}, files={"video": video}
        ).json()["note"]
        is None
    )
    r = client.post("/get_video_captions", data={"every_n_second": "0.1"}, files={"video": video})
    assert "the 3 moments before each span only 0.3 s of video" in r.json()["note"]  # fmt: skip
    assert "(rolling_window_size)" in r.json()["note"]
    r = client.post("/get_video_captions", params={"metric": "manhattan"},
                    files={"video": ("clip.mp4", b"x", "video/mp4")})  # fmt: skip
    assert r.status_code == 422 and "metric" in r.json()["error"]


def test_get_video_captions_refuses_an_option_given_twice_in_one_place(client, tiny_video):
    """?every_n_second=2&every_n_second=3 ran at 3 s without a word; /v1/videos said 422."""
    video = {"video": ("clip.mp4", open(tiny_video, "rb").read(), "video/mp4")}
    r = client.post("/get_video_captions?every_n_second=2&every_n_second=3", files=video)
    assert (
        r.status_code == 422 and r.json()["error"] == "every_n_second: given 2 times; send it once"
    )
    r = client.post("/get_video_captions", files=[*video.items(), ("metric", (None, "cosine")),
                                                  ("metric", (None, "euclidean"))])  # fmt: skip
    assert r.status_code == 422 and r.json()["error"] == "metric: given 2 times; send it once"
    # one in the query string and one in the form: the form's, as documented
    r = client.post(
        "/get_video_captions?every_n_second=2", data={"every_n_second": "1"}, files=video
    )
    assert r.status_code == 200 and r.json()["times"] == [0.0, 1.0, 2.0, 3.0]
    # fields it does not read are still ignored, as the original server ignored them
    r = client.post("/get_video_captions?every_n_second=1&submit=go&submit=again", files=video)
    assert r.status_code == 200, r.text


def test_get_video_captions_refuses_a_model_it_would_not_run(client, tiny_video):
    """?model=labels had run the server's video captioner without a word."""
    video = {"video": ("clip.mp4", open(tiny_video, "rb").read(), "video/mp4")}
    for sent in ({"params": {"model": "labels"}}, {"data": {"model": "labels"}}):
        r = client.post("/get_video_captions", files=video, **sent)
        assert r.status_code == 422 and r.json()["error"] == (
            "model: /get_video_captions runs the server's own captioner, as the original did; "
            "send it to POST /v1/videos"
        )


def test_get_video_captions_error_names_the_clients_file(client, truncated_video):
    r = client.post("/get_video_captions", params={"every_n_second": 1},
                    files={"video": ("trunc.mp4", truncated_video, "video/mp4")})  # fmt: skip
    assert r.status_code == 400
    error = r.json()["error"]
    assert error.startswith("trunc.mp4: truncated video"), error
    assert "input.mp4" not in error and str(client.app.state.settings.job_dir) not in error
    left = [j for j in client.get("/v1/jobs").json()["jobs"] if j["filename"] == "trunc.mp4"]
    assert left == []  # no failed job is left behind that the client was never told of


def test_a_form_field_where_a_file_belongs_is_a_plain_422(client):
    for path, field in [("/get_captions", "image"), ("/get_video_captions", "video"),
                        ("/v1/videos", "video"), ("/v1/captions", "images")]:  # fmt: skip
        r = client.post(path, files=[(field, (None, "cat.jpg"))])  # curl -F image=cat.jpg (no @)
        assert r.status_code == 422
        error = r.json()["error"]
        assert error.startswith(field) and error.endswith(": expected a file upload"), error
        r = client.post(path, data={field: "cat.jpg"})  # curl -d: a urlencoded form, no file in it
        assert r.status_code == 415 and f"(curl -F {field}=@FILE)" in r.json()["error"]


def test_a_video_past_the_time_limit_answers_504_with_the_jobs_address(
    make_app, started, scripted_engine, tiny_video
):
    scripted_engine.gate.clear()  # the analysis waits until released
    try:
        for client in started(make_app(request_timeout_s=0.5)):
            r = client.post("/get_video_captions",
                            files={"video": ("clip.mp4", tiny_video.read_bytes(), "video/mp4")})  # fmt: skip
            assert r.status_code == 504
            job = r.headers["Location"]
            assert job.startswith("/v1/jobs/") and f"poll GET {job}" in r.json()["error"]
            scripted_engine.gate.set()
            assert client.get(job).status_code == 200
    finally:
        scripted_engine.gate.set()


def test_a_video_deleted_while_its_request_waits_answers_at_once(
    make_app, started, scripted_engine, tiny_video, wait_for
):
    """Before, the request waited out the whole time limit, then pointed at the deleted job."""
    scripted_engine.gate.clear()  # the analysis waits until released
    answers = []
    try:
        for client in started(make_app(request_timeout_s=60)):

            def post(client=client):
                answers.append(client.post("/get_video_captions", files={
                    "video": ("clip.mp4", tiny_video.read_bytes(), "video/mp4")}))  # fmt: skip

            waiting = threading.Thread(target=post)
            waiting.start()
            wait_for(lambda c=client: c.get("/v1/jobs").json()["jobs"], what="the job")
            job = client.get("/v1/jobs").json()["jobs"][0]["id"]
            assert client.delete(f"/v1/jobs/{job}").status_code == 204
            waiting.join(timeout=50)  # the limit is 60 s: a 410 is no 504 after waiting it out
            (r,) = answers
            assert r.status_code == 410 and r.json()["error"] == (
                f"job {job} was deleted before its analysis finished"
            )
    finally:
        scripted_engine.gate.set()


def test_a_video_deleted_as_its_answer_is_read_is_410_not_empty_captions(
    make_app, started, tiny_video, monkeypatch
):
    from capsight.server.jobs import JobManager

    def deleted_meanwhile(self, job_id):  # DELETE /v1/jobs/{id} between the job's end and here
        self.delete(job_id)
        return None

    for client in started(make_app()):
        monkeypatch.setattr(JobManager, "analysis", deleted_meanwhile)
        r = client.post("/get_video_captions",
                        files={"video": ("clip.mp4", tiny_video.read_bytes(), "video/mp4")})  # fmt: skip
        assert (
            r.status_code == 410
            and "was deleted before its analysis could be read" in r.json()["error"]
        )


def test_a_client_that_hangs_up_takes_its_video_job_along(
    make_app, started, scripted_engine, tiny_video, monkeypatch
):
    """The synchronous caller never learns the job's id: a job left running would hold a
    worker for nobody."""
    from starlette.requests import Request

    async def gone(self):
        return True

    scripted_engine.gate.clear()
    try:
        for client in started(make_app(request_timeout_s=60)):
            monkeypatch.setattr(Request, "is_disconnected", gone)
            r = client.post("/get_video_captions",
                            files={"video": ("clip.mp4", tiny_video.read_bytes(), "video/mp4")})  # fmt: skip
            assert r.status_code == 499
            monkeypatch.undo()
            assert client.get("/v1/jobs").json()["jobs"] == []
    finally:
        scripted_engine.gate.set()


def test_a_stopping_server_answers_a_waiting_video_request_at_once(
    make_app, started, scripted_engine, tiny_video
):
    """On SIGTERM the request had waited out the shutdown's grace and got no answer at all."""
    import threading

    scripted_engine.gate.clear()
    try:
        for client in started(make_app(request_timeout_s=60)):
            threading.Timer(0.5, client.app.state.stopping.set).start()  # as `capsight serve` does
            r = client.post("/get_video_captions",
                            files={"video": ("clip.mp4", tiny_video.read_bytes(), "video/mp4")})  # fmt: skip
            assert r.status_code == 503 and r.headers["retry-after"] == "30"
            assert (
                r.json()["error"] == "the server is stopping; send the video again once it is back"
            )
            # its id was never told: gone with it
            assert client.get("/v1/jobs").json()["jobs"] == []
    finally:
        scripted_engine.gate.set()


def test_the_original_endpoints_answers_are_described_in_the_schema(client):
    paths = client.get("/openapi.json").json()["paths"]
    for path, keys in (("/get_image_caption", {"captions", "encoders_out", "embedded_words", "words", "model",
                                               "note"}),
                       ("/get_video_captions", {"captions", "distance_from_previous", "times", "novel",
                                                "job_id", "model", "note"})):  # fmt: skip
        schema = paths[path]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert set(schema["properties"]) == keys
    # The job to poll, for a client generated from the schema: the 202 and the 504 carry it.
    for path, status in (("/v1/videos", "202"), ("/get_video_captions", "504")):
        assert "Location" in paths[path]["post"]["responses"][status]["headers"], path
    assert "headers" not in paths["/get_captions"]["post"]["responses"]["504"]


def test_choices_are_taken_whatever_their_case(client, tiny_video, cat_jpeg):
    """The CLI takes --metric COSINE; the API had answered 422 to metric=EUCLIDEAN."""
    video = ("clip.mp4", Path(tiny_video).read_bytes(), "video/mp4")
    r = client.post("/get_video_captions", params={"metric": "EUCLIDIAN"}, files={"video": video})
    assert r.status_code == 200, r.text
    assert client.get(f"/v1/jobs/{r.json()['job_id']}").json()["params"]["metric"] == "euclidean"
    r = client.post("/v1/videos", data={"metric": "Cosine", "signal": "Visual"},
                    files={"video": video})  # fmt: skip
    assert r.status_code == 202, r.text
    params = client.get(f"/v1/jobs/{r.json()['id']}").json()["params"]
    assert params["metric"] == "cosine" and params["signal"] == "visual"
    r = client.post("/v1/captions", data={"method": "Greedy"},
                    files=[("images", ("cat.jpg", cat_jpeg, "image/jpeg"))])  # fmt: skip
    assert r.status_code == 200, r.text
    assert client.get("/v1/jobs", params={"status": "DONE"}).status_code == 200
    r = client.post("/v1/videos", data={"metric": "Manhattan"}, files={"video": video})
    assert r.status_code == 422 and "metric" in r.json()["error"]
