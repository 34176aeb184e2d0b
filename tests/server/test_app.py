"""Health, readiness, models, the API key, JSON errors everywhere, settings and `capsight serve`."""

from __future__ import annotations

import os
import threading

import pytest
from fastapi.testclient import TestClient

from capsight.errors import InvalidParameter
from capsight.server.engine import Engine
from capsight.server.settings import ServerSettings


def test_health_ready_and_models(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["jobs"]["workers"] == 1
    models = client.get("/v1/models").json()
    assert models["default"] == models["video_default"] == "labels"  # this app's configured default
    labels = next(m for m in models["captioners"] if m["name"] == "labels")
    assert labels["available"] and labels["default"]
    assert all(m["name"] != "checkpoint" for m in models["captioners"])  # needs a path: not served
    assert "euclidian" in models["metrics"]


def test_default_model_resolves_to_an_installed_captioner(warm_models):
    engine = Engine()  # the library's own default, whatever is installed
    name = engine.resolve_model("default")
    entry = next(m for m in engine.models() if m["name"] == name)
    assert entry["available"] and entry["default"]
    # A video is captioned by a one-encoder captioner, as `capsight video` does.
    from capsight.captioning.facade import resolve_captioner

    video = engine.video_model()
    assert (
        "+" not in resolve_captioner(video)[0].describe()["encoder"]
    )  # one encoder pass, not the pair's two
    assert [m["name"] for m in engine.models() if m["video_default"]] == [video]
    assert engine.video_model("labels") == "labels"


def test_default_named_by_a_client_is_the_servers_default():
    """`serve --model labels`: a request (or the web page's menu) naming "default" gets labels,
    as GET /v1/models and the menu's "default here is labels" say."""
    engine = Engine("labels")
    assert engine.resolve_model("default") == engine.resolve_model() == "labels"
    assert engine.video_model("default") == engine.video_model() == "labels"


class _SlowLoadingEngine(Engine):
    def __init__(self):
        super().__init__()
        self.release = threading.Event()

    def _load(self):
        self.release.wait(30)
        super()._load()


def test_readyz_is_503_while_models_load(make_app):
    engine = _SlowLoadingEngine()
    with TestClient(make_app(engine=engine)) as c:
        r = c.get("/readyz")
        assert r.status_code == 503 and r.json()["status"] == "loading"
        assert c.get("/healthz").status_code == 200
        engine.release.set()


def test_every_captioner_is_described_before_the_server_is_ready(monkeypatch):
    """GET /v1/models and the page's menus had loaded prefix-gpt2 (transformers' import, 5-7 s)
    on their first call, after /readyz said ready; a captioner that fails to describe itself
    does not keep the server from starting."""
    import capsight.captioning.facade as facade
    import capsight.ort.video as ort_video

    monkeypatch.setattr(facade, "describe_images", lambda images, model: None)
    monkeypatch.setattr(ort_video, "video_models", lambda *names: None)
    engine = Engine("labels")
    described_when_ready = []
    monkeypatch.setattr(engine, "models", lambda: described_when_ready.append(engine.ready))
    engine._load()
    assert described_when_ready == [False] and engine.ready and engine.load_error is None

    def broken():
        raise RuntimeError("a broken optional captioner")

    engine = Engine("labels")
    monkeypatch.setattr(engine, "models", broken)
    engine._load()
    assert engine.ready and engine.load_error is None


def test_a_failed_model_load_is_503_and_names_no_server_path(make_app, cat_jpeg, monkeypatch):
    import capsight.captioning.facade as facade

    def broken(model):
        raise RuntimeError("cannot open /opt/secret/weights.bin")

    monkeypatch.setattr(facade, "resolve_captioner", broken)  # a bug or a broken install
    with TestClient(make_app(engine=Engine("labels"))) as c:
        assert c.app.state.engine._ready.wait(30)  # loading has ended (in failure)
        ready = c.get("/readyz")
        assert ready.status_code == 503 and ready.json()["status"] == "failed"
        r = c.post("/v1/captions", files={"images": ("a.jpg", cat_jpeg, "image/jpeg")})
        assert r.status_code == 503, r.text  # the server's fault, not the client's
        assert "/opt/secret" not in r.text and "/opt/secret" not in ready.text


def test_api_key(make_app, cat_jpeg, started):
    for c in started(make_app(api_key="correct-horse")):
        image = {"image": ("a.jpg", cat_jpeg, "image/jpeg")}
        r = c.post("/get_captions", files=image)
        assert r.status_code == 401 and "X-API-Key" in r.json()["error"]
        for wrong in ({"X-API-Key": "wrong-horse"}, {"Authorization": "Bearer wrong-horse"}):
            r = c.get("/v1/jobs", headers=wrong)
            assert r.status_code == 401 and "is not this server's" in r.json()["error"]
        assert c.post("/get_captions", files=image,
                      headers={"X-API-Key": "correct-horse"}).status_code == 200  # fmt: skip
        auth = {"Authorization": "Bearer correct-horse"}
        assert c.get("/v1/jobs", headers=auth).status_code == 200
        assert c.get("/healthz").status_code == 200  # probes need no key
        schema = c.get("/openapi.json").json()  # the key's two ways, for /docs' Authorize button
        assert set(schema["components"]["securitySchemes"]) == {"APIKey", "Bearer"}
        assert schema["paths"]["/v1/captions"]["post"]["security"] == [
            {"APIKey": []},
            {"Bearer": []},
        ]
        assert "security" not in schema["paths"]["/healthz"]["get"]
        # The upload form holds nothing, and a browser cannot send the header: it is shown,
        # saying how to send the key (it had been the JSON 401 in the browser).
        form = c.get("/get_captions")
        assert form.status_code == 200 and "this form cannot send" in form.text
        assert "<form" in form.text and "/ui/" not in form.text  # (no web page on this one)
        browser = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}  # its Upload button
        r = c.post("/get_captions", files=image, headers=browser)
        assert r.status_code == 401 and r.headers["content-type"].startswith("text/html")
        assert "X-API-Key" in r.text and "<form" in r.text  # the page again, not JSON
    for c in started(make_app(ui=True, api_key="correct-horse")):
        assert 'log in with it on <a href="/ui/">' in c.get("/get_captions").text
    for c in started(make_app()):  # no key: the schema asks for none
        assert "API key" not in c.get("/get_captions").text
        schema = c.get("/openapi.json").json()
        assert "securitySchemes" not in schema.get("components", {})
        assert "security" not in schema["paths"]["/v1/captions"]["post"]


def test_a_body_that_is_not_a_form_is_told_to_be_one(client, cat_jpeg):
    """All fields of a JSON or bare-image body would read as missing; the answer says why."""
    for path, body, kind in [("/v1/captions", cat_jpeg, "image/jpeg"),
                             ("/get_captions", b'{"image": "a.jpg"}', "application/json"),
                             ("/get_video_captions", b"\x00" * 16, "video/mp4")]:  # fmt: skip
        r = client.post(path, content=body, headers={"Content-Type": kind})
        assert r.status_code == 415, (path, r.text)
        assert r.json()["error"] == f"send the request as multipart/form-data (it came as {kind})"
    urlencoded = {"Content-Type": "application/x-www-form-urlencoded"}  # curl --data-binary's
    # files need multipart
    r = client.post("/v1/classify", content=b"classes=cat", headers=urlencoded)
    assert r.status_code == 415 and "(curl -F images=@FILE)" in r.json()["error"]
    for path, field in (("/get_captions", "image"), ("/get_image_caption", "image")):
        r = client.post(path, content=cat_jpeg, headers=urlencoded)  # was "image: field required"
        assert r.status_code == 415 and r.json()["error"] == (
            f"send the request as multipart/form-data, the file as a field (curl -F {field}=@FILE); "
            "it came as a urlencoded form (as curl --data-binary sends), which cannot carry a file"
        )
    # a photo whose bytes hold over 1,000 "&": the parser's own 400
    ampersands = cat_jpeg + b"&" * 1_200
    for path in ("/v1/captions", "/get_video_captions"):
        r = client.post(path, content=ampersands, headers=urlencoded)
        assert r.status_code == 415 and "curl -F " in r.json()["error"], (path, r.text)
    many = [("images", (f"{i}.png", b"x", "image/png")) for i in range(1_001)]
    r = client.post("/v1/captions", files=many)  # the parser's limit, before the server's own
    assert r.status_code == 422 and r.json()["error"] == (
        "images: at most 16 images per request (this one had over 1,000 files)"
    )
    fields = [("seed", (None, "1")) for _ in range(1_001)]  # Starlette's words named no field
    r = client.post("/v1/captions", files=[("images", ("a.jpg", cat_jpeg, "image/jpeg")), *fields])
    assert r.status_code == 400 and r.json()["error"].startswith(
        "over 1,000 form fields in one request; send each option once (beam_width, "
    ), r.text
    r = client.post("/v1/captions", files={"images": ("a" * 5000 + ".jpg", cat_jpeg, "image/jpeg")})
    assert r.status_code == 400 and r.json()["error"].startswith(
        "the body is not readable multipart"
    )
    r = client.post(
        "/v1/classify",
        files={"images": ("cat.jpg", cat_jpeg, "image/jpeg")},
        data={"classes": "é" * 600_000},
    )  # 1.2 MB of text: Starlette's "Part exceeded ... 1024KB"
    assert r.status_code == 413 and r.json()["error"].startswith("a text field is over 1 MiB"), (
        r.text
    )
    r = client.post(
        "/v1/captions", content=b"--x\r\n", headers={"content-type": "multipart/form-data"}
    )
    assert r.status_code == 400 and r.json()["error"].startswith(
        "the Content-Type multipart/form-data names no boundary"
    )
    r = client.post("/v1/captions", content=cat_jpeg)  # curl --data-binary without a type
    assert r.status_code == 415 and r.json()["error"].endswith("(it came with no Content-Type)")
    r = client.post("/v1/captions")  # no body at all: the field is simply missing
    assert r.status_code == 422 and r.json()["error"] == "images: field required"
    r = client.post("/v1/classifiers", json={"classes": "cat, dog"})  # no field is required
    assert r.status_code == 415 and "(it came as application/json)" in r.json()["error"]


def test_options_in_the_wrong_place_and_extra_files_are_refused_not_ignored(client, cat_jpeg):
    image = ("a.jpg", cat_jpeg, "image/jpeg")
    r = client.post("/v1/captions?method=greedy&seed=3", files={"images": image})
    assert r.status_code == 422
    assert r.json()["error"] == ("method, seed: /v1/captions takes its options as form fields "
                                 "(curl -F method=...), not in the query string")  # fmt: skip
    r = client.post("/v1/videos?every=0&=x", files={"video": ("v.mp4", b"x", "video/mp4")})
    assert r.status_code == 422 and r.json()["error"].startswith("every: /v1/videos takes")
    r = client.post("/get_captions", files=[("image", image), ("image", image)])
    assert r.status_code == 422
    assert r.json()["error"] == "image: one file per request, got 2; send each as its own request"
    two = [("video", ("a.mp4", b"x", "video/mp4")), ("video", ("b.mp4", b"x", "video/mp4"))]
    assert client.post("/v1/videos", files=two).json()["error"].startswith("video: one file")
    # A misspelt field, or the original endpoint's name for an option, is not ignored either.
    r = client.post("/v1/captions", files={"images": image}, data={"modle": "labels"})
    assert r.status_code == 422 and r.json()["error"].startswith(
        "modle: not a field of /v1/captions, which reads images, model, method, "
    )
    r = client.post("/v1/videos", files={"video": ("v.mp4", b"x", "video/mp4")},
                    data={"every_n_second": "5", "metric": "cosine"})  # fmt: skip
    assert r.status_code == 422 and r.json()["error"].startswith(
        "every_n_second: not a field of /v1/videos"
    )
    # A whole file sent as the body's one field name (curl --data-binary @photo.jpg sends it as
    # a urlencoded form) or in the query string: refused in a short line, not echoed back.
    r = client.post("/v1/captions", content=cat_jpeg + b"\x00" * 200_000,
                    headers={"content-type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert r.status_code == 415 and "multipart/form-data, the file as a field" in r.json()["error"]
    assert len(r.content) < 300
    r = client.post("/v1/classify", files={"images": image},
                    data={"x" * 1_000: "1", **{f"f{i}": "1" for i in range(9)}})  # fmt: skip
    assert r.status_code == 422 and len(r.content) < 500
    assert r.json()["error"].startswith(
        "'" + "x" * 37 + "...', f0, f1, f2, f3 and 5 more: not a field"
    )
    r = client.post("/v1/videos", content=b"\x00\x00\x00\x18ftypisom" + b"\x00" * 500,
                    headers={"content-type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert r.status_code == 415 and "curl -F video=@FILE" in r.json()["error"]
    r = client.post("/v1/captions", files={"images": image}, data={"mod\u200bel": "labels"})
    assert r.status_code == 422 and "not a field of /v1/captions" in r.json()["error"]  # multipart
    r = client.post(f"/v1/captions?{'q' * 60_000}=1", files={"images": image})
    assert r.status_code == 422 and len(r.content) < 300
    r = client.post("/v1/captions", files={"images": image}, data={"model": "m" * 1_000_000})
    assert r.status_code in (404, 422) and len(r.content) < 1000
    # A field given twice would keep its last value only; a list field (images, template) may.
    r = client.post(
        "/v1/captions", files={"images": image}, data={"model": ["labels", "show-and-tell"]}
    )
    assert r.status_code == 422 and r.json()["error"] == "model: given 2 times; send it once"
    r = client.post(
        "/v1/captions", files=[("images", image), ("images", image)], data={"model": "labels"}
    )
    assert r.status_code == 200 and len(r.json()["results"]) == 2
    # The original endpoints ignore them, as the original server did (a form's submit button).
    r = client.post("/get_captions", files={"image": image}, data={"submit": "Upload"})
    assert r.status_code == 200
    assert client.post("/get_captions", files={"image": image}).status_code == 200


def test_a_multipart_body_cut_off_before_its_closing_boundary_is_a_400(client, cat_jpeg):
    # The file was sent: "images: field required" would send the client looking elsewhere.
    head = b'--x\r\nContent-Disposition: form-data; name="images"; filename="a.jpg"\r\n\r\n'
    r = client.post("/v1/captions", content=head + cat_jpeg,
                    headers={"content-type": "multipart/form-data; boundary=x"})  # fmt: skip
    assert r.status_code == 400 and "cut off before its closing boundary" in r.json()["error"]
    whole = head + cat_jpeg + b"\r\n--x--\r\n"
    r = client.post(
        "/v1/captions", content=whole, headers={"content-type": "multipart/form-data; boundary=x"}
    )
    assert r.status_code == 200
    r = client.post("/v1/captions", data={"model": "labels"}, files={"other": ("a.txt", b"x")})
    assert r.status_code == 422  # a form with parts, just not the file: still a missing field
    r = client.request("GET", "/v1/jobs?limit=abc", content=head,
                       headers={"content-type": "multipart/form-data; boundary=x"})  # fmt: skip
    assert r.status_code == 422 and r.json()["error"].startswith("limit:")  # not the body's fault


def test_every_error_is_json(client):
    for method, path in [("get", "/nope"), ("put", "/v1/captions"), ("get", "/v1/jobs/x")]:
        r = getattr(client, method)(path)
        assert 400 <= r.status_code < 500
        assert r.headers["content-type"] == "application/json" and r.json()["error"]
    r = client.get("/v1/jobs", params={"limit": "0"})
    assert r.status_code == 422 and r.json()["error"].startswith("limit:")
    r = client.get("/v1/jobs", params={"stauts": "failed"})  # would list every job
    assert r.status_code == 422 and r.json()["error"] == (
        "stauts: not an option of /v1/jobs, which reads limit, offset, status"
    )
    r = client.get("/v1/jobs?status=done&status=failed")  # would list the failed ones only
    assert r.status_code == 422 and r.json()["error"] == "status: given 2 times; send it once"
    r = client.get("/v1/models", params={"_": "1712345678"})  # a cache-buster changes nothing
    assert r.status_code == 200
    r = client.get("/v1/jobs", params={"_": "1712345678", "utm_source": "mail", "fbclid": "x"})
    assert r.status_code == 200  # (nor a shared link's tracking options)
    # Every route that reads query options refuses one it does not (it had answered 200 as if
    # not asked); one that reads none ignores them.
    for path, option in [("/v1/jobs/0123456789abcdef", "analysys"),
                         ("/v1/jobs/0123456789abcdef/csv", "dowload")]:  # fmt: skip
        r = client.get(path, params={option: "1"})
        assert r.status_code == 422 and r.json()["error"].startswith(
            f"{option}: not an option of {path}"
        ), (path, r.text)
    assert client.get("/v1/models", params={"verbose": "1"}).status_code == 200


def test_a_path_with_a_slash_too_many_is_redirected_with_a_line_that_says_where(client, cat_jpeg):
    """POST /v1/captions/ was a 307 with no body: curl without -L printed nothing, exit 0."""
    r = client.post("/v1/captions/", files={"images": ("cat.jpg", cat_jpeg, "image/jpeg")},
                    follow_redirects=False)  # fmt: skip
    assert r.status_code == 307 and r.headers["location"].endswith("/v1/captions")
    assert r.json() == {"error": "no such endpoint: POST /v1/captions/; the endpoint is "
                                 "/v1/captions (this answer redirects there)"}  # fmt: skip
    followed = client.post("/v1/captions/", files={"images": ("cat.jpg", cat_jpeg, "image/jpeg")})
    assert followed.status_code == 200 and "cat" in followed.json()["results"][0]["caption"]


def test_root_points_to_docs_and_ui(client):
    assert client.get("/").json()["docs"] == "/docs"
    r = client.get("/", headers={"accept": "text/html"}, follow_redirects=False)
    assert r.status_code == 200  # this app has the UI off: no redirect
    assert client.get("/docs").status_code == 200


def test_docs_page_loads_nothing_from_the_internet(client):
    import re

    page = client.get("/docs")
    assert page.status_code == 200 and "swagger-ui" in page.text
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(u.startswith("/docs-assets/") for u in sources), sources
    for url in sources:
        assert client.get(url).status_code == 200, url
    js = client.get("/docs-assets/swagger-ui-bundle.js").text
    assert 'PACKAGE_VERSION:"5.' in js  # Swagger UI 5: it reads FastAPI's OpenAPI 3.1


def test_settings_from_env_and_flags(tmp_path):
    env = {"CAPSIGHT_PORT": "9001", "CAPSIGHT_WORKERS": "2", "CAPSIGHT_UI": "false",
           "CAPSIGHT_JOB_DIR": str(tmp_path), "CAPSIGHT_API_KEY": "k" * 12}  # fmt: skip
    s = ServerSettings.from_env(env)
    assert (s.port, s.workers, s.ui, s.job_dir, s.api_key) == (9001, 2, False, tmp_path, "k" * 12)
    assert "k" * 12 not in repr(s)
    assert s.replace(port=8080, workers=None).port == 8080 and s.replace(workers=None).workers == 2
    with pytest.raises(InvalidParameter, match="CAPSIGHT_PORT"):
        ServerSettings.from_env({"CAPSIGHT_PORT": "eighty"})
    with pytest.raises(InvalidParameter, match="workers"):
        ServerSettings(workers=0)
    with pytest.raises(InvalidParameter, match="CAPSIGHT_UI"):
        ServerSettings.from_env({"CAPSIGHT_UI": "maybe"})


def test_serve_flags_override_environment(tmp_path):
    from capsight._cli.main import build_parser
    from capsight._cli.serve import settings_from_args

    args = build_parser().parse_args(
        ["serve", "--port", "8123", "--queue-size", "3", "--no-ui", "--job-dir", str(tmp_path)]
    )
    s = settings_from_args(args, {"CAPSIGHT_PORT": "9000", "CAPSIGHT_MAX_UPLOAD_MB": "5"})
    assert (s.port, s.queue_size, s.ui, s.max_upload_mb, s.job_dir) == (8123, 3, False, 5.0,
                                                                       tmp_path)  # fmt: skip
    # A flag wins over a variable it could not even read (it had stopped the server).
    broken = {"CAPSIGHT_PORT": "abc", "CAPSIGHT_UI": "maybe", "CAPSIGHT_QUEUE_SIZE": "2.5"}
    assert settings_from_args(args, broken).port == 8123
    with pytest.raises(InvalidParameter, match=r"CAPSIGHT_WORKERS='2.5' is not a whole number"):
        settings_from_args(args, {"CAPSIGHT_WORKERS": "2.5"})  # no --workers: the variable counts


def test_an_api_key_from_a_secret_file_loses_its_newline():
    """A key that ends in a newline was accepted, then every request was refused: no HTTP
    header can carry it."""
    assert ServerSettings(api_key="secretkey1\n").api_key == "secretkey1"
    assert ServerSettings.from_env({"CAPSIGHT_API_KEY": " secretkey1 "}).api_key == "secretkey1"
    with pytest.raises(InvalidParameter, match="needs >= 8 characters, got 0"):
        ServerSettings(api_key=" " * 8)


def test_an_api_key_file_keeps_the_key_out_of_the_environment(tmp_path):
    """CAPSIGHT_API_KEY_FILE (a Docker secret): `docker inspect` shows CAPSIGHT_API_KEY."""
    secret = tmp_path / "key"
    secret.write_text("secretkey1\n")
    env = {"CAPSIGHT_API_KEY_FILE": str(secret)}
    assert ServerSettings.from_env(env).api_key == "secretkey1"
    assert ServerSettings.from_env(env, skip={"api_key"}).api_key is None  # --api-key wins
    with pytest.raises(
        InvalidParameter, match="CAPSIGHT_API_KEY and CAPSIGHT_API_KEY_FILE are both set"
    ):
        ServerSettings.from_env({**env, "CAPSIGHT_API_KEY": "otherkey1"})
    with pytest.raises(
        InvalidParameter, match=r"CAPSIGHT_API_KEY_FILE=.*gone: cannot read it \(No such"
    ):
        ServerSettings.from_env({"CAPSIGHT_API_KEY_FILE": str(tmp_path / "gone")})
    secret.write_text("short\n")  # the message had named --api-key, which was not given
    with pytest.raises(InvalidParameter, match=r"^CAPSIGHT_API_KEY_FILE=.*key: the key in it "
                       r"needs >= 8 characters, got 5$"):  # fmt: skip
        ServerSettings.from_env(env)


def _serve(args: list[str], monkeypatch) -> int:
    """``capsight serve ARGS`` up to the point where uvicorn would start (which fails the test)."""
    import uvicorn

    from capsight._cli.main import main

    def no_server(*a, **k):
        raise AssertionError("uvicorn started despite bad settings")

    monkeypatch.setattr(uvicorn, "run", no_server)
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")  # serve sets it; keep the environment as is
    return main(["serve", *args])


def test_serve_refuses_a_job_dir_it_cannot_use(tmp_path, monkeypatch, capsys):
    photo = tmp_path / "good.jpg"
    photo.write_bytes(b"\xff\xd8\xff")
    for job_dir, reason in [(photo, "is not a folder"), (photo / "jobs", "Not a directory")]:
        assert _serve(["--job-dir", str(job_dir)], monkeypatch) == 2
        err = capsys.readouterr().err
        assert err.startswith("capsight: error: ") and reason in err and "--job-dir" in err, err
        assert len(err.splitlines()) == 1 and "Traceback" not in err
    # An empty one (an unset shell variable) put the job store in the current folder.
    assert _serve(["--job-dir", ""], monkeypatch) == 2
    assert (
        capsys.readouterr().err
        == "capsight: error: --job-dir (or CAPSIGHT_JOB_DIR) is empty; name a folder\n"
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write to a read-only folder")
def test_serve_refuses_an_unwritable_job_dir(tmp_path, monkeypatch, capsys):
    read_only = tmp_path / "ro"
    read_only.mkdir(mode=0o555)
    for job_dir in (read_only, read_only / "jobs"):
        assert _serve(["--job-dir", str(job_dir)], monkeypatch) == 2
        err = capsys.readouterr().err
        assert err.startswith("capsight: error: cannot use") and "Permission denied" in err, err


def test_serve_refuses_an_unknown_model_up_front(tmp_path, monkeypatch, capsys):
    assert _serve(["--model", "nope", "--job-dir", str(tmp_path)], monkeypatch) == 2
    err = capsys.readouterr().err
    assert err.startswith("capsight: error: unknown captioner 'nope'; available: default, labels")
    assert len(err.splitlines()) == 1
    assert _serve(["--model", "show-and-tel", "--job-dir", str(tmp_path)], monkeypatch) == 2
    assert "'show-and-tel' (did you mean 'show-and-tell'?)" in capsys.readouterr().err


def test_models_name_their_checkpoints_without_the_servers_paths(client):
    captioners = client.get("/v1/models").json()["captioners"]
    with_checkpoints = [c for c in captioners if "checkpoint" in c]
    assert with_checkpoints, "no installed captioner has a checkpoint to check"
    for entry in with_checkpoints:
        assert "/" not in entry["checkpoint"] and entry["checkpoint"], entry


def test_nan_and_infinity_are_called_not_finite_not_out_of_range(client, cat_jpeg):
    for value in ("nan", "inf", "-Infinity"):
        r = client.post("/v1/captions", data={"method": "sample", "temperature": value},
                        files={"images": ("cat.jpg", cat_jpeg, "image/jpeg")})  # fmt: skip
        assert r.status_code == 422
        assert r.json()["error"] == "temperature: Input should be a finite number", value
    r = client.post("/get_video_captions", params={"every_n_second": "nan"})
    assert "every_n_second: Input should be a finite number" in r.json()["error"]
    for value in ("9" * 5000, "1e400"):  # finite, but past a float's range: the field's range
        r = client.post("/get_video_captions", params={"every_n_second": value})
        assert "every_n_second: Input should be less than or equal to 3600" in r.json()["error"]
        shown = "9" * 37 + "..." if value.startswith("9") else value  # a long one cut short
        assert f"3600, got {shown}; " in r.json()["error"]
    # The value sent, as the CLI and the Python API give it ("beam width ... got 0").
    r = client.post("/v1/captions", data={"beam_width": "0"},
                    files={"images": ("cat.jpg", cat_jpeg, "image/jpeg")})  # fmt: skip
    assert r.json()["error"] == "beam_width: Input should be greater than or equal to 1, got 0"


def test_health_answers_head_requests_and_readyz_is_described(client):
    assert client.head("/healthz").status_code == 200  # uptime probes often send HEAD
    assert client.head("/readyz").status_code == 200
    r = client.post("/v1/models")  # a wrong method: the 405 lists HEAD, answered here too
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD"
    r = client.post("/v1/jobs/0123abcd")  # and every route's method: DELETE is a route of its own
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD, DELETE"
    schema = client.get("/openapi.json").json()["paths"]["/readyz"]["get"]["responses"]
    assert "status" in schema["200"]["content"]["application/json"]["schema"]["properties"]
    assert "application/json" in schema["503"]["content"]


def test_cors_lets_the_named_origins_call_the_api_from_a_browser(make_app, started, monkeypatch):
    origin = "https://app.example.com"
    app = make_app(cors_origins="HTTPS://App.Example.com/, http://localhost:5173", max_upload_mb=0.01,
                   api_key="s3cret-key")  # fmt: skip
    key = {"X-API-Key": "s3cret-key"}
    for c in started(app):
        r = c.get("/v1/models", headers={"Origin": origin, **key})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == origin
        other = c.get("/v1/models", headers={"Origin": "https://evil.example", **key})
        assert "access-control-allow-origin" not in other.headers
        preflight = c.options("/v1/captions", headers={  # a browser sends no key with it
            "Origin": origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-api-key, content-type"})  # fmt: skip
        assert (
            preflight.status_code == 200
            and preflight.headers["access-control-allow-origin"] == origin
        )
        refused = c.options("/v1/captions", headers={
            "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})  # fmt: skip
        assert refused.status_code == 400 and refused.json()["error"] == (  # had been plain text
            "this server does not allow that cross-origin request (origin); its operator names "
            "the allowed origins with --cors-origins (CAPSIGHT_CORS_ORIGINS)"
        )
        private = c.options("/v1/captions", headers={"Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Private-Network": "true"})  # fmt: skip
        assert private.status_code == 400 and private.json()["error"] == (
            "this server does not allow that cross-origin request (private-network)"
        )  # (an allowed origin: --cors-origins is not the thing to change)
        keyless = c.get("/v1/models", headers={"Origin": origin})
        assert (
            keyless.status_code == 401 and keyless.headers["access-control-allow-origin"] == origin
        )
        too_big = c.post("/v1/captions", content=b"x" * 20_000, headers={"Origin": origin, **key})
        assert (
            too_big.status_code == 413 and too_big.headers["access-control-allow-origin"] == origin
        )
        monkeypatch.setattr(app.state.engine, "models", lambda: 1 / 0)  # a bug: a 500
        bug = TestClient(app, raise_server_exceptions=False).get(
            "/v1/models", headers={"Origin": origin, **key}
        )
        assert bug.status_code == 500 and bug.headers["access-control-allow-origin"] == origin
        monkeypatch.undo()  # the engine is shared with the next app
    for c in started(make_app()):  # none named: same-origin pages only
        assert (
            "access-control-allow-origin"
            not in c.get("/v1/models", headers={"Origin": origin}).headers
        )


@pytest.mark.parametrize(
    "origins",
    [
        "app.example.com",
        "https://app.example.com/ui",
        "ftp://x",
        "https://",
        "https://*.example.com",
    ],
)
def test_a_cors_entry_that_is_not_an_origin_is_refused(origins):
    from capsight.errors import InvalidParameter
    from capsight.server.settings import ServerSettings

    with pytest.raises(InvalidParameter, match="CAPSIGHT_CORS_ORIGINS.*is not an origin"):
        ServerSettings.from_env({"CAPSIGHT_CORS_ORIGINS": origins})
