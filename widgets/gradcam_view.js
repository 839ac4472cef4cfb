// GradCamView (widgets/gradcam_view.py): a face, its probability bars and the Grad-CAM heatmap of one class.
// The kernel sends the face and all K heatmaps as base64 uint8 (side × side each); choosing a class repaints the
// heatmap here, without a round trip; previous / next change `index`, and the kernel sends the next face's data.

// base64 → Uint8Array
function decodeBytes(text) {
  return Uint8Array.from(atob(text || ""), (c) => c.charCodeAt(0));
}

// A heatmap value 0-255 → [r, g, b]: dark blue → cyan → yellow → red (a "jet"-like ramp).
function heatColour(v) {
  const t = v / 255;
  const r = Math.min(1, Math.max(0, 1.5 - Math.abs(4 * t - 3)));
  const g = Math.min(1, Math.max(0, 1.5 - Math.abs(4 * t - 2)));
  const b = Math.min(1, Math.max(0, 1.5 - Math.abs(4 * t - 1)));
  return [255 * r, 255 * g, 255 * b];
}

// Paint `face` (side² grey levels) on `canvas`, blended with heatmap `map` (side² values, or null: the face alone).
function paint(canvas, face, map, side) {
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(side, side);
  for (let p = 0; p < side * side; p++) {
    const grey = face[p] || 0;
    let rgb = [grey, grey, grey];
    if (map) {
      const alpha = 0.6 * Math.sqrt(map[p] / 255);
      rgb = heatColour(map[p]).map((c) => (1 - alpha) * grey + alpha * c);
    }
    image.data.set([rgb[0], rgb[1], rgb[2], 255], 4 * p);
  }
  ctx.putImageData(image, 0, 0);
}

// One clickable bar per class: the probability as its width; the predicted class red, the chosen one outlined.
function drawBars(model, bars) {
  const names = model.get("class_names"), probs = model.get("probabilities");
  const chosen = model.get("selected"), truth = model.get("true_label");
  const top = probs.indexOf(Math.max(...probs));
  bars.replaceChildren(...names.map((name, k) => {
    const row = document.createElement("button");
    row.className = "xl-gc-bar" + (k === chosen ? " xl-gc-chosen" : "") + (k === truth ? " xl-gc-true" : "");
    row.dataset.cls = name;
    const fill = document.createElement("span");
    fill.className = "xl-gc-fill" + (k === top ? " xl-gc-top" : "");
    fill.style.width = (100 * (probs[k] || 0)).toFixed(1) + "%";
    const label = document.createElement("span");
    label.className = "xl-gc-label";
    label.textContent = `${name} ${(100 * (probs[k] || 0)).toFixed(0)}%` + (k === truth ? " (true)" : "");
    row.append(fill, label);
    row.addEventListener("click", () => { model.set("selected", k); model.save_changes(); });
    return row;
  }));
}

function makeCanvas(side, title) {
  const box = document.createElement("figure");
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = side;
  const caption = document.createElement("figcaption");
  caption.textContent = title;
  box.append(canvas, caption);
  return { box, canvas, caption };
}

function stepper(model, label, step) {
  const button = document.createElement("button");
  button.className = "xl-gc-step";
  button.textContent = label;
  button.addEventListener("click", () => {
    const n = model.get("count");
    model.set("index", (model.get("index") + step + n) % n);
    model.save_changes();
  });
  return button;
}

function render({ model, el }) {
  const side = model.get("side");
  const root = document.createElement("div");
  root.className = "xl-gradcam";
  const faceView = makeCanvas(side, "face");
  const heatView = makeCanvas(side, "heatmap");
  faceView.canvas.className = "xl-gc-face";
  heatView.canvas.className = "xl-gc-heat";
  const bars = document.createElement("div");
  bars.className = "xl-gc-bars";
  const nav = document.createElement("div");
  nav.className = "xl-gc-nav";
  const where = document.createElement("span");
  const status = document.createElement("div");
  status.className = "xl-gc-status";
  nav.append(stepper(model, "◀ previous", -1), where, stepper(model, "next ▶", 1));
  const row = document.createElement("div");
  row.className = "xl-gc-row";
  row.append(faceView.box, heatView.box, bars);
  root.append(nav, row, status);
  el.append(root);
  const redraw = () => {
    const face = decodeBytes(model.get("face")), maps = decodeBytes(model.get("heatmaps"));
    const k = model.get("selected"), n = side * side, name = model.get("class_names")[k];
    const map = maps.length >= (k + 1) * n ? maps.subarray(k * n, (k + 1) * n) : null;
    paint(faceView.canvas, face, null, side);
    paint(heatView.canvas, face, map, side);
    heatView.caption.textContent = map ? `Grad-CAM: ${name}` : "no heatmap";
    where.textContent = ` face ${model.get("index") + 1} of ${model.get("count")} `;
    status.textContent = model.get("status");
    drawBars(model, bars);
  };
  for (const name of ["face", "heatmaps", "selected", "probabilities", "status", "index", "true_label"]) {
    model.on(`change:${name}`, redraw);
  }
  redraw();
  return () => root.remove();
}

export default { render };
