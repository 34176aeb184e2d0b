"""The web page in headless Chromium against a real `capsight serve` process.

A person uploads a photo and sees a caption; uploads a short video and sees the plot and the
gallery of novel moments; choosing a moment seeks the player. Screenshots go to the test's temp
folder (their paths are printed). Skipped when Chromium or Playwright is missing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

# Debian's, where .ci/run installs it; else whichever `chromium` is on PATH
CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists() and shutil.which("chromium"):
    CHROMIUM = Path(shutil.which("chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]  # fmt: skip

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`capsight serve` in a subprocess on a free port; yields its base URL."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api")
    port = _free_port()
    folder = tmp_path_factory.mktemp("e2e")
    env = {**os.environ, "CAPSIGHT_JOB_DIR": str(folder / "jobs"), "CAPSIGHT_PORT": str(port)}
    log = open(folder / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "capsight", "serve", "--log-level", "warning"],
                            env=env, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                with urllib.request.urlopen(base + "/readyz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError((folder / "server.log").read_text()[-3000:])
            time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1360, "height": 1000})
        page.set_default_timeout(180_000)
        page.goto(server + "/ui/")
        page.wait_for_selector(".capsight-hero")
        yield page
        browser.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


def test_model_menus_close_when_tab_moves_on(page):
    """Gradio's Dropdown opens its list on focus and, left with Tab, kept it open over the
    controls below (ui.js closes it)."""
    page.get_by_role("tab", name="Image").click()
    page.get_by_label("Model A").focus()
    # focus that shows (the theme left a focused menu looking like the one beside it)
    outline = page.evaluate("""() => getComputedStyle(document.querySelector(
        'input[role=combobox][aria-label="Model A"]').closest('.wrap')).outlineStyle""")
    assert outline == "solid"
    for _ in range(3):  # through Model B to the controls after it
        page.keyboard.press("Tab")
        page.wait_for_timeout(300)
    assert page.locator("[role=listbox]").count() == 0
    page.get_by_label("Model B").click()  # the mouse still opens a menu, and a choice is taken
    page.get_by_role("option", name="show-and-tell").click()
    page.wait_for_function("document.querySelectorAll('[role=listbox]').length === 0")
    assert page.get_by_label("Model B").input_value() == "show-and-tell"
    page.get_by_label("Model B").click()
    page.get_by_role("option", name="labels").click()  # as the other tests expect it


def test_photo_gets_a_caption(page, shots, tmp_path):
    data = pytest.importorskip("skimage.data")
    photo = tmp_path / "cat.jpg"
    Image.fromarray(data.chelsea()).save(photo, quality=90)
    page.locator("#capsight-photo input[type=file]").set_input_files(str(photo))
    page.locator("#capsight-photo img").wait_for()
    page.evaluate("""() => {  // what screen readers are told: the live regions' texts
        window.__announced = [];
        new MutationObserver(() => document.querySelectorAll('[aria-live]').forEach(
            (el) => window.__announced.push(el.textContent.trim()))
        ).observe(document.body, {subtree: true, childList: true, characterData: true});
    }""")
    page.click("#capsight-describe")
    caption = page.locator("#capsight-caption-a .cap-text")
    caption.wait_for()
    assert len(caption.inner_text().split()) >= 3
    # the event's end is announced: Gradio's own key, "common.complete", had been read out
    page.wait_for_function("window.__announced.some((t) => t === 'Done' || t.includes('common.'))",
                           timeout=30_000)  # fmt: skip
    announced = set(page.evaluate("window.__announced"))
    assert "Done" in announced and not [t for t in announced if "common." in t], announced
    assert page.locator("#capsight-caption-b .cap-text").inner_text()
    page.locator("#capsight-looked-a img").wait_for()
    page.screenshot(path=str(shots / "image.png"), full_page=True)
    print("screenshot:", shots / "image.png")
    # A model menu opened and left without a choice (Gradio fires `input` on that too) keeps
    # the results: they had been wiped, as if another model had been picked.
    said = caption.inner_text()
    menu = page.get_by_role("combobox", name="Model A")
    menu.click()
    page.mouse.click(5, 5)  # away from the open list
    menu.focus()
    page.keyboard.press("Tab")
    page.wait_for_timeout(1000)
    assert caption.inner_text() == said
    assert page.locator("#capsight-looked-a img").count() == 1


def test_video_shows_plot_and_gallery_and_seeks(page, server, shots, tmp_path):
    from capsight.io.synthetic_video import write_video

    data = pytest.importorskip("skimage.data")
    size = (192, 128)
    cat = np.asarray(Image.fromarray(data.chelsea()).resize(size))
    coffee = np.asarray(Image.fromarray(data.coffee()).resize(size))
    clip = tmp_path / "cut.mp4"
    write_video(clip, [cat] * 25 + [coffee] * 25, fps=10)  # a hard cut at 2.5 s

    page.get_by_role("tab", name="Video").click()
    page.locator("#capsight-video input[type=file]").set_input_files(str(clip))
    page.locator("#capsight-video video").wait_for()
    for slider, value in (("#capsight-every", "0.5"), ("#capsight-window", "3")):
        box = page.locator(f"{slider} input[type=number]")
        box.fill(value)
        box.press("Enter")
    page.click("#capsight-analyze")
    page.locator("#capsight-video-summary .stat-row").wait_for()
    page.locator("#capsight-plot img").wait_for()
    items = page.locator("#capsight-gallery .thumbnail-item")
    items.first.wait_for()
    assert items.count() >= 1
    # The caption under its frame, not laid over the frame's lower quarter; no empty band above
    # the frame (the tile had been square around a 16:9 frame).
    page.wait_for_function("() => { const i = document.querySelector('#capsight-gallery .thumbnail-item img');"
                           " return i && i.complete && i.naturalWidth > 0 }")  # fmt: skip
    tile, frame = items.first.bounding_box(), items.first.locator("img").bounding_box()
    caption = items.first.locator(".caption-label").bounding_box()
    assert caption["y"] >= frame["y"] + frame["height"] - 1 and frame["y"] - tile["y"] < 4
    assert "novel moment" in page.inner_text("#capsight-video-summary")
    track = page.locator("#capsight-video video track")  # the captions, as subtitles
    track.first.wait_for(state="attached", timeout=30_000)
    links = page.locator("#capsight-downloads a")
    assert links.count() == 5
    for link in [page.locator("#capsight-video-summary a").first, *links.all()]:
        assert page.request.get(server + link.get_attribute("href")).status == 200
    # saved under the video's name: Gradio's filename="moments.csv" had won over the link's
    with page.expect_download() as saving:
        page.locator("#capsight-downloads a", has_text="moments").first.click()
    assert saving.value.suggested_filename == "cut-moments.csv"
    assert page.inner_text("#capsight-stale").strip() == ""
    box = page.locator("#capsight-sensitivity input[type=number]")  # a setting moved after the run
    box.fill("0.7")
    box.press("Enter")
    page.locator("#capsight-stale .cap-stale").wait_for()
    assert "settings have changed" in page.inner_text("#capsight-stale")
    failed = []  # a number past a slider's range, typed and not yet left: no 500 from the server
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 500 else None)
    box = page.locator("#capsight-window input[type=number]")
    box.press_sequentially("45")
    page.wait_for_timeout(1500)
    assert failed == []
    box.fill("3")
    box.press("Enter")
    every = page.locator("#capsight-every input[type=number]")  # emptied: back to what it was,
    every.click()  # not the slider's minimum
    every.fill("2")
    every.press("Enter")  # taken (the box still has the focus)
    every.fill("")
    every.press("Tab")
    page.wait_for_timeout(500)
    assert every.input_value() == "2"
    assert page.locator("#capsight-every input[type=range]").input_value() == "2"
    page.screenshot(path=str(shots / "video.png"), full_page=True)
    print("screenshot:", shots / "video.png")

    cue = "getComputedStyle(document.querySelector('#capsight-plot'), '::before').content"
    assert "Swipe" not in page.evaluate(cue)  # the whole plot is in view
    page.set_viewport_size({"width": 390, "height": 844})  # a phone: the plot scrolls sideways
    try:
        page.wait_for_function(f"{cue}.includes('Swipe sideways')")
        # The sliders' ends stay in view (Gradio hides them under 480 px), inside the page.
        ends = page.locator("#capsight-every .max_value").bounding_box()
        assert ends and ends["width"] > 0 and ends["x"] + ends["width"] <= 390
        # A moment chosen plays in view: the player sits a screen above the gallery, where it
        # had played out of sight.
        items.first.scroll_into_view_if_needed()
        items.first.click()
        page.wait_for_function("() => { const r = document.querySelector('#capsight-video video')"
                               ".getBoundingClientRect(); return r.bottom > 0 && r.top < innerHeight }",
                               timeout=15_000)  # fmt: skip
        # Every moment's time on one line ("00:00" over ".5" on a phone).
        page.locator("button", has_text="Every moment").click()
        lines = page.wait_for_function("""() => { const found = [...document.querySelectorAll(
            '#capsight-moments .body-cell.first-column .text, #capsight-moments th .text')]
            .filter(e => e.getBoundingClientRect().height > 0).slice(0, 6).map(e => {
              const style = getComputedStyle(e);
              const line = parseFloat(style.lineHeight) || 1.2 * parseFloat(style.fontSize);
              return [e.innerText, Math.round(e.getBoundingClientRect().height / line)]; });
            return found.some(([text]) => text.includes(':')) && found; }""").json_value()
        times = [(text, rows) for text, rows in lines if ":" in text]
        assert times and all(rows == 1 for _, rows in times), lines
        page.set_viewport_size({"width": 768, "height": 1024})  # a tablet: two columns still
        page.wait_for_timeout(300)
        for slider in ("#capsight-every", "#capsight-window"):  # "30" had been cut to "3"
            end = page.locator(f"{slider} .max_value").bounding_box()
            box = page.locator(slider).bounding_box()
            assert (
                end and end["width"] > 0 and end["x"] + end["width"] <= box["x"] + box["width"] + 1
            )
        page.screenshot(path=str(shots / "video-tablet.png"), full_page=True)
        print("screenshot:", shots / "video-tablet.png")
    finally:
        page.set_viewport_size({"width": 1360, "height": 1000})

    # "00:02.5 · a photo of ...", as the CLI and the report write it
    label = items.first.inner_text()
    assert label.startswith("00:0") and "." in label.split("·")[0]  # moments 0.5 s apart: tenths
    seconds = float(label.split("·")[0].strip().split(":")[1])
    items.first.click()
    page.wait_for_function(
        f"Math.abs((document.querySelector('#capsight-video video')?.currentTime ?? -9) - {seconds})"
        " < 0.6"
    )


def test_a_text_file_as_photo_gets_one_line_naming_it(page, tmp_path):
    notes = tmp_path / "notes.jpg"
    notes.write_text("a shopping list, not a photo\n")
    page.get_by_role("tab", name="Image").click()
    page.locator("#capsight-photo input[type=file]").set_input_files(str(notes))
    page.click("#capsight-describe")
    message = page.get_by_text("notes.jpg: not an image (it looks like text)")
    message.first.wait_for(timeout=30_000)
    assert "/tmp/" not in message.first.inner_text()


def test_after_a_failed_run_the_find_button_is_on_again_and_no_error_pill_is_left(page, tmp_path):
    """Gradio runs no .then step after a run that raised: the button stayed off, even after
    "The server is busy ... retry in 9 s". And its red "Error" pill over the empty gallery said
    again what the summary says."""
    from importlib.resources import files

    cut = tmp_path / "cut.mp4"  # opens and probes, then fails partway through
    cut.write_bytes((files("capsight") / "data" / "sample.mp4").read_bytes()[:300_000])
    page.get_by_role("tab", name="Video").click()
    clear = page.locator("#capsight-video button[aria-label='Clear']")
    if clear.count():  # the clip of a test before
        clear.first.click()
    page.locator("#capsight-video input[type=file]").set_input_files(str(cut))
    page.locator("#capsight-video video").wait_for()
    find = page.locator("#capsight-analyze")
    page.wait_for_function("!document.querySelector('#capsight-analyze').disabled")
    find.click()
    page.locator("#capsight-video-summary", has_text="did not finish").wait_for()
    page.wait_for_function("!document.querySelector('#capsight-analyze').disabled", timeout=10_000)
    assert not page.locator("#capsight-gallery .error").is_visible()
    for close in page.locator(".toast-close").all():  # the run's own toast, kept until closed
        close.click()


def test_a_clip_no_browser_plays_is_explained_without_gradios_error_toast(page, tmp_path):
    """Gradio toasted "Error: Video not playable" beside capsight's own line, which says why
    and that the analysis reads the file all the same (ui.js closes that toast). A file that
    is no video is named in a toast of capsight's (on a phone the summary card is a screen
    further down): the upload's handler, run outside Gradio's queue, had had its toast lost."""
    notes = tmp_path / "notes.mp4"
    notes.write_text("a shopping list, not a video\n")
    page.get_by_role("tab", name="Video").click()
    clear = page.locator("#capsight-video button[aria-label='Clear']")
    if clear.count():  # the clip of a test before
        clear.first.click()
    page.locator("#capsight-video input[type=file]").set_input_files(str(notes))
    page.locator("#capsight-video-summary", has_text="notes.mp4").wait_for(timeout=30_000)
    page.wait_for_timeout(2000)  # the toast comes when the player gives up
    toasts = page.evaluate(
        "Array.from(document.querySelectorAll('.toast-item')).map(e => e.innerText)"
    )
    assert not [t for t in toasts if "Video not playable" in t]
    assert [t for t in toasts if "notes.mp4: not a video" in t], toasts
    for close in page.locator(".toast-close").all():
        close.click()


def test_a_photo_dropped_on_the_video_box_is_named_in_capsights_words(page, tmp_path):
    """Gradio refuses it before capsight sees it: "Invalid file type: x.jpg. Only
    video/x-m4v,video/* allowed." (ui.js says it as the page's other refusals do)."""
    photo = tmp_path / "beach.jpg"
    Image.new("RGB", (64, 48), (200, 180, 90)).save(photo)
    page.get_by_role("tab", name="Video").click()
    clear = page.locator("#capsight-video button[aria-label='Clear']")
    if clear.count():  # the clip of a test before
        clear.first.click()
    page.locator("#capsight-video input[type=file]").set_input_files(str(photo))
    toast = page.locator(".toast-item", has_text="beach.jpg")
    toast.first.wait_for(timeout=30_000)
    page.wait_for_timeout(500)  # (rewritten on the next animation frame)
    said = toast.first.inner_text()
    assert "beach.jpg: not a video; choose a video file" in said and "video/*" not in said
    for close in page.locator(".toast-close").all():
        close.click()


def test_a_new_photo_drops_the_results_still_on_their_way(page, tmp_path):
    """Describe a photo that takes a while, upload another before the reply: the late reply
    is cancelled, so the new photo never sits beside the old one's captions."""
    rng = np.random.default_rng(0)
    slow = tmp_path / "noise.jpg"  # 36 megapixels of noise: seconds to decode and describe
    Image.fromarray(rng.integers(0, 255, (6000, 6000, 3), dtype=np.uint8)).save(slow, quality=85)
    quick = tmp_path / "grey.png"
    Image.new("RGB", (64, 48), (120, 120, 120)).save(quick)
    page.get_by_role("tab", name="Image").click()
    page.locator("#capsight-photo input[type=file]").set_input_files(str(slow))
    page.locator("#capsight-photo img").wait_for()
    page.click("#capsight-describe")
    page.locator("#capsight-photo input[type=file]").set_input_files(str(quick))
    page.wait_for_timeout(15_000)  # the first reply would have landed by now
    assert page.locator("#capsight-caption-a .cap-text").count() == 0
    assert "The caption appears here." in page.inner_text("#capsight-caption-a")


def test_a_typed_slider_value_is_rounded_to_the_step(page):
    page.get_by_role("tab", name="Image").click()
    page.locator("button", has_text="Decoding").first.click()
    box = page.locator("#capsight-beam input[type=number]")  # whole numbers from 0 to 8
    box.wait_for()
    # the accordion's content settles (typed into at once, it was re-drawn)
    page.wait_for_timeout(1000)
    for typed, shown in (("2.5", "3"), ("99", "8"), ("-3", "0")):
        box.fill(typed)
        box.press("Enter")
        page.wait_for_function(
            f"document.querySelector('#capsight-beam input[type=number]').value === '{shown}'"
        )


def test_a_class_list_pasted_over_the_last_clears_its_bars(page, tmp_path):
    """The bars were cleared on the box's `input` event, which a paste (or a filled-in value)
    does not send: "cat 99%" stayed beside a new list of vehicles."""
    data = pytest.importorskip("skimage.data")
    photo = tmp_path / "cat.jpg"
    Image.fromarray(data.chelsea()).save(photo, quality=90)
    page.get_by_role("tab", name="Classify").click()
    page.locator("#capsight-classify-photo input[type=file]").set_input_files(str(photo))
    page.locator("#capsight-classify-photo img").wait_for()
    page.click("#capsight-classify")
    page.locator("#capsight-top5", has_text="%").wait_for()
    page.locator("#capsight-classes textarea").fill("car, bus, truck")
    page.wait_for_function(
        "!document.querySelector('#capsight-top5').innerText.includes('%')", timeout=10_000
    )


def test_an_open_tab_does_not_hold_the_servers_shutdown(page, tmp_path):
    """SIGTERM with a tab open: the tab's heartbeat stream held the shutdown for uvicorn's whole
    10 s grace, which then cancelled it with a logged traceback. (A tab of the module's own
    browser, on a server of its own: one sync Playwright runs at a time.)"""
    port = _free_port()
    env = {**os.environ, "CAPSIGHT_JOB_DIR": str(tmp_path / "jobs"), "CAPSIGHT_PORT": str(port)}
    log_path = tmp_path / "server.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "capsight", "serve"], env=env, stdout=log,
                                stderr=subprocess.STDOUT)  # fmt: skip
        try:
            deadline = time.monotonic() + 240
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                        break
                except OSError:
                    assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text()
                    time.sleep(0.5)
            tab = page.context.browser.new_page()
            try:
                tab.goto(f"http://127.0.0.1:{port}/ui/")
                tab.wait_for_selector(".capsight-hero")
                tab.wait_for_timeout(2000)  # the heartbeat stream is open
                proc.terminate()
                proc.wait(timeout=60)
            finally:
                tab.close()
        finally:
            if proc.poll() is None:
                proc.kill()
    said = log_path.read_text()
    assert "Finished server process" in said
    assert "graceful shutdown exceeded" not in said and "Traceback" not in said, said[-3000:]
