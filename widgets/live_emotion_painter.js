// LiveEmotion's painter (widgets/live_emotion.py): a kernel reply drawn on the page, the label, one bar per class
// (the most probable highlighted) and the face box over the preview. A part of the widget's module, joined by
// widgets/frontend.py.

// One row per class name in `barsEl` (name, track and fill, percentage); returns their elements in that order.
function makeBars(barsEl, names) {
  return names.map((name) => {
    const row = document.createElement("div");
    row.className = "xl-live-bar";
    row.innerHTML = `<span class="xl-live-name"></span><span class="xl-live-track"><span class="xl-live-fill">` +
      `</span></span><span class="xl-live-value"></span>`;
    row.querySelector(".xl-live-name").textContent = name;
    barsEl.appendChild(row);
    return { row, fill: row.querySelector(".xl-live-fill"), value: row.querySelector(".xl-live-value") };
  });
}

function paintBars(bars, probabilities) {
  const top = probabilities.indexOf(Math.max(...probabilities));
  probabilities.forEach((p, i) => {
    bars[i].fill.style.width = (100 * p).toFixed(1) + "%";
    bars[i].value.textContent = Math.round(100 * p) + "%";
    bars[i].row.classList.toggle("xl-live-top", i === top);
  });
}

// The face `box` ([x, y, w, h] in a frame of `frameSize` [W, H] pixels) over the preview; a clear overlay without.
function drawFaceBox(overlay, video, box, frameSize) {
  const w = video.clientWidth, h = video.clientHeight;
  if (overlay.width !== w || overlay.height !== h) { overlay.width = w; overlay.height = h; }
  const ctx = overlay.getContext("2d");
  ctx.clearRect(0, 0, w, h);
  if (!box || !frameSize) return;
  // the frame was scaled from the video; the video is shown letter-boxed ("contain") in the element
  const scale = Math.min(w / frameSize[0], h / frameSize[1]);
  const dx = (w - frameSize[0] * scale) / 2, dy = (h - frameSize[1] * scale) / 2;
  ctx.lineWidth = 3; ctx.strokeStyle = "#d1495b";
  ctx.strokeRect(dx + box[0] * scale, dy + box[1] * scale, box[2] * scale, box[3] * scale);
}

// The painter of one view: show(reply, frameSize) paints a kernel reply about a frame of that size; redraw()
// draws the box again (the preview was resized). With no face the bars keep their last values, greyed out.
function makePainter(el, { video, overlay, labelEl, barsEl }, names) {
  const bars = makeBars(barsEl, names);
  let box = null, frameSize = null;
  const redraw = () => drawFaceBox(overlay, video, box, frameSize);
  const show = (msg, size) => {
    frameSize = size;
    if (msg.face && msg.probabilities) {
      box = msg.box;
      paintBars(bars, msg.probabilities);
      labelEl.textContent = msg.label;
      el.classList.remove("xl-live-noface");
    } else if (!msg.error) {
      box = null;
      labelEl.textContent = msg.label;
      el.classList.add("xl-live-noface");
    }
    el.dataset.label = labelEl.textContent;
    redraw();
  };
  return { show, redraw };
}
