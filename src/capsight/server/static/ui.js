// A slider's number box shows what was typed, but Gradio sends the value clamped to the
// slider's range: typing 5 for a 0.2-2 temperature showed 5 and sampled at 2. Put the value
// that will be used in the box, as the slider already shows it: clamped to the range and
// rounded to the slider's step (2.5 captions is 3; a whole-number slider refused 2.5).
// A box left empty takes back the value it had when it was entered, where Gradio would set
// the slider's minimum without a word (Sample every 0.25 s, temperature 0.2).
const before = new WeakMap();
document.addEventListener("focusin", (event) => {
  const box = event.target;
  if (box instanceof HTMLInputElement && box.type === "number" && box.value !== "") {
    before.set(box, box.value);
  }
}, true);
document.addEventListener("change", (event) => {
  const box = event.target;
  if (!(box instanceof HTMLInputElement) || box.type !== "number") return;
  if (box.value === "") {
    if (!before.has(box)) return;
    box.value = before.get(box);
    box.dispatchEvent(new Event("input", { bubbles: true }));
    return;
  }
  const value = Number(box.value);
  if (!Number.isFinite(value)) return;
  const low = box.min !== "" ? Number(box.min) : null;
  const high = box.max !== "" ? Number(box.max) : null;
  let fixed = value;
  const step = Number(box.step);
  if (box.step !== "" && box.step !== "any" && step > 0) {
    const base = low ?? 0;
    fixed = Number((base + Math.round((value - base) / step) * step).toFixed(6));
  }
  if (low !== null && fixed < low) fixed = low;
  if (high !== null && fixed > high) fixed = high;
  before.set(box, String(fixed));  // the value an emptied box takes back from now on
  if (fixed === value) return;
  box.value = String(fixed);
  box.dispatchEvent(new Event("input", { bubbles: true }));
}, true);

// A model menu reached with Tab opens its list, and Gradio's Dropdown left it open when Tab
// moved on: two stale lists then covered the controls under them. Closed as focus leaves.
document.addEventListener("focusout", (event) => {
  const box = event.target;
  if (!(box instanceof HTMLInputElement) || box.getAttribute("role") !== "combobox") return;
  setTimeout(() => {
    if (document.activeElement === box || box.getAttribute("aria-expanded") !== "true") return;
    box.dispatchEvent(new KeyboardEvent("keydown", { key: "Escape", bubbles: true }));
  }, 0);
}, true);

// Gradio toasts "Error: Video not playable" for a clip the browser cannot play, beside the
// summary box, where capsight already says why and whether the analysis can read it (an MPEG-4
// Part 2 clip it analyses as usual read as a failure). That toast is closed as it appears.
// A photo (or any file) dropped on the video box is refused by Gradio itself, in MIME words:
// "Invalid file type: x.jpg. Only video/x-m4v,video/* allowed." Said as capsight says it.
const INVALID_TYPE = /^Invalid file type: (.+)\. Only (video|image)\/\S* allowed\.?$/;
const tidyToasts = () => {
  for (const item of document.querySelectorAll(".toast-item")) {
    const text = item.querySelector(".toast-message-text");
    const said = text ? text.textContent.trim() : "";
    if (said === "Video not playable") {
      item.querySelector(".toast-close")?.click();
    }
    const refused = said.match(INVALID_TYPE);
    if (refused) {
      text.textContent = refused[2] === "video"
        ? `${refused[1]}: not a video; choose a video file (MP4, WebM, MOV, MKV, AVI, ...)`
        : `${refused[1]}: not an image; choose a photo (JPEG, PNG, WebP, ...)`;
    }
  }
};
let toastCheck = 0;  // at most one look per frame: the page changes many times a second in a run
const watchToasts = () => {
  new MutationObserver(() => {
    if (!toastCheck) toastCheck = requestAnimationFrame(() => { toastCheck = 0; tidyToasts(); });
  }).observe(document.body, { childList: true, subtree: true });
};
if (document.body) watchToasts();
else document.addEventListener("DOMContentLoaded", watchToasts);
