"""POST /v1/classify: the API's own words for class lists a client can get wrong."""

from __future__ import annotations


def test_one_class_is_refused_with_advice_that_fits_the_api(client, cat_jpeg):
    files = {"images": ("cat.jpg", cat_jpeg, "image/jpeg")}
    r = client.post("/v1/classify", data={"classes": "cat"}, files=files)
    assert r.status_code == 422
    error = r.json()["error"]
    assert error.startswith("'cat' is a single class; give two or more ('cat, dog')")
    assert "class file" not in error  # a client cannot send one
    r = client.post("/v1/classify", data={"classes": "dog-breed"}, files=files)
    assert "did you mean the built-in set 'dog-breeds'?" in r.json()["error"]
    r = client.post("/v1/classify", data={"classes": "cat, cat"}, files=files)
    assert r.json()["error"] == "class list repeats cat; each class once"  # still the library's


def test_classes_sent_empty_are_said_to_be_empty_not_missing(client, cat_jpeg):
    files = {"images": ("cat.jpg", cat_jpeg, "image/jpeg")}
    r = client.post("/v1/classify", data={"classes": ""}, files=files)  # curl -F classes=
    assert r.status_code == 422 and r.json()["error"] == "classes: sent empty; give it a value"
    r = client.post("/v1/classify", files=files)  # not sent at all
    assert r.json()["error"] == "classes: field required"


def test_a_classification_past_the_time_limit_says_the_same_request_later_is_quicker(
    make_app, started, cat_jpeg, monkeypatch
):
    import threading

    from capsight.server.routers import classify

    release = threading.Event()

    def slow_build(classes, templates):
        release.wait(10)  # the class list's build outlasts the request's limit
        raise RuntimeError("not reached in the answer")

    monkeypatch.setattr(classify, "_classifier", slow_build)
    for client in started(make_app(request_timeout_s=0.3)):
        files = {"images": ("cat.jpg", cat_jpeg, "image/jpeg")}
        r = client.post("/v1/classify", data={"classes": "cat, dog"}, files=files)
        release.set()
        assert r.status_code == 504
        assert r.json()["error"] == (
            "classification took longer than the server's 0.3 s limit; the work goes on, and the "
            "class list it prepares is kept: the same request again in a minute is quicker"
        )


def test_a_classifier_from_example_photos_alone_past_the_limit_promises_nothing_kept(
    make_app, started, cat_jpeg, monkeypatch
):
    """Only class prompts' embeddings are kept; photos alone embed none."""
    import threading

    from capsight.classify import few_shot

    release = threading.Event()

    def slow_build(*args, **kwargs):
        release.wait(10)
        raise RuntimeError("not reached in the answer")

    monkeypatch.setattr(few_shot, "build_from_examples", slow_build)
    examples = [
        ("examples", (f"{c}/{i}.jpg", cat_jpeg, "image/jpeg")) for c in ("a", "b") for i in (1, 2)
    ]
    for client in started(make_app(request_timeout_s=0.3)):
        r = client.post("/v1/classifiers", files=examples)
        release.set()
        assert r.status_code == 504
        assert (
            r.json()["error"] == "building the classifier took longer than the server's 0.3 s limit"
        )


def test_requests_for_a_class_list_being_built_wait_for_that_build(monkeypatch):
    """A request sent again while the first (past its time limit) still builds its class list
    had started a second build beside it."""
    import threading
    import time
    import uuid

    from capsight.classify import engines
    from capsight.classify.class_sets import parse_classes
    from capsight.server.routers import classify

    builds = []

    class SlowEngine:
        def build(self, classes, templates):
            builds.append(classes)
            time.sleep(0.3)
            return object()

    monkeypatch.setattr(engines, "create_engine", lambda name: SlowEngine())
    # A list no other test asks for: its fake classifier may stay in the cache unread.
    classes = parse_classes(f"aardwolf {uuid.uuid4().hex}, okapi")
    got = []
    threads = [threading.Thread(target=lambda: got.append(classify._classifier(classes, None)))
               for _ in range(3)]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(got) == 3 and got[0] is got[1] is got[2]
    assert len(builds) == 1  # three, one per request, before


def test_a_class_list_s_file_and_its_classifier_never_wait_on_one_lock(monkeypatch, tmp_path):
    """The file's lock and its list's build lock had come from one array of 16: where both
    fell on the same lock, the export waited on itself for ever (one list in 16)."""
    import threading
    from pathlib import Path

    from capsight.classify import export
    from capsight.classify.class_sets import ClassList
    from capsight.server.routers import classify

    class Built:
        labels = ["a", "b"]

    monkeypatch.setattr(classify, "_built_classifier", lambda classes, templates: Built())
    monkeypatch.setattr(
        export,
        "save_classifier",
        lambda clf, path, *a: Path(path).write_bytes(b"pt") and Path(path),
    )
    classify._exported_file.cache_clear()
    classify._notes.cache_clear()
    builds = len(classify._BUILD_LOCKS)
    for i in range(200):  # a list whose file and build fall on the same index of their arrays
        classes = ClassList((f"mug {i}", "kettle"))
        if hash((classes, None, ".pt")) % builds == hash((classes, None)) % builds:
            break
    done = []
    worker = threading.Thread(
        target=lambda: done.append(classify._exported(classes, None, ".pt")), daemon=True
    )
    worker.start()
    worker.join(30)  # a deadlock, not a time: the call itself takes milliseconds
    assert done == [(b"pt", 2, ())]
    classify._exported_file.cache_clear()
    classify._notes.cache_clear()


def test_each_result_says_whether_its_top_class_stands_out(client, cat_jpeg):
    """As the page's headline and the CLI's note: a near tie is not an answer."""
    files = {"images": ("cat.jpg", cat_jpeg, "image/jpeg")}
    clear = client.post("/v1/classify", data={"classes": "cat, dog"}, files=files).json()
    assert clear["results"][0]["stands_out"] is True
    tie = client.post("/v1/classify", data={"classes": "apple, banana"}, files=files).json()
    assert tie["results"][0]["stands_out"] is False


def test_a_typed_class_list_skips_its_blank_names(make_app, started, cat_jpeg):
    """A blank in a typed list is no class (as in a class file); only the library refuses one
    in a Python list, whose order a caller reads the scores by."""
    for client in started(make_app()):
        r = client.post("/v1/classify", files={"images": ("cat.jpg", cat_jpeg, "image/jpeg")},
                        data={"classes": "cat, , dog\n\ncar, \u200b"})  # fmt: skip
        assert r.status_code == 200, r.text
        assert sorted(c["label"] for c in r.json()["results"][0]["top"]) == ["car", "cat", "dog"]
