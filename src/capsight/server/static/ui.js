// A slider's number box shows what was typed, but Gradio sends the value clamped to the
// slider's range: typing 5 for a 0.2-2 temperature showed 5 and sampled at 2. Put the value
// that will be used in the box, as the slider already shows it.
document.addEventListener("change", (event) => {
  const box = event.target;
  if (!(box instanceof HTMLInputElement) || box.type !== "number" || box.value === "") return;
  const value = Number(box.value);
  const bound = box.min !== "" && value < Number(box.min) ? box.min
    : box.max !== "" && value > Number(box.max) ? box.max : null;
  if (bound === null) return;
  box.value = bound;
  box.dispatchEvent(new Event("input", { bubbles: true }));
}, true);
