"""The API over the real novelty pipeline (not the scripted one): a cut is found and reported."""

from __future__ import annotations

import pytest

from capsight.server.engine import Engine


@pytest.mark.slow
def test_real_video_job_and_legacy_endpoint(make_app, tiny_video, warm_models, started,
                                            wait_for_job):  # fmt: skip
    for c in started(make_app(engine=Engine("labels"))):
        with open(tiny_video, "rb") as f:
            r = c.post("/v1/videos", data={"every": "0.4", "window": "3"},
                       files={"video": ("clip.mp4", f, "video/mp4")})  # fmt: skip
        assert r.status_code == 202, r.text
        done = wait_for_job(c, r.json()["id"], timeout=240)
        assert done["status"] == "done", done["error"]
        analysis = done["analysis"]
        captions = [m["caption"] for m in analysis["moments"]]
        assert "cat" in captions[0]
        novel = [m["time"] for m in analysis["novel_moments"]]
        assert any(1.2 <= t <= 2.4 for t in novel), novel  # the cut at 1.6 s
        index = next(i for i, m in enumerate(analysis["moments"]) if m["is_novel"])
        thumb = c.get(f"/v1/jobs/{done['id']}/thumbnails/{index}")
        assert thumb.status_code == 200 and thumb.content.startswith(b"\xff\xd8")

        with open(tiny_video, "rb") as f:
            r = c.post("/get_video_captions", params={"every_n_second": 1, "metric": "cosine"},
                       files={"video": ("clip.mp4", f, "video/mp4")})  # fmt: skip
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["captions"]) == 4 and body["distance_from_previous"][0] == 0.0
        assert max(body["distance_from_previous"][1:]) > 0
