// LiveEmotion's timings (widgets/live_emotion.py): each frame from its copy off the preview (t0) to its bars
// painted (the animation frame after the update), summed up about once a second in the `stats` trait, the
// widget's data-stats attribute and its stats line. A part of the widget's module, joined by widgets/frontend.py.

const WINDOW = 60; // frames the reported medians cover
const LOG_LENGTH = 10000; // frames kept in el.xlTimings

function median(values) {
  if (!values.length) return null;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)];
}

function quantile(values, q) {
  if (!values.length) return null;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

function pushLast(values, value, keep) {
  values.push(value);
  if (values.length > keep) values.shift();
}

// The timings of one view. painted(t0, kernelMs, tReply) after a reply was drawn; summary(lost, frameSize) the
// stats. Every frame's timings (the last 10,000) are el.xlTimings for benchmarks that read the page:
// [t0, painted, kernel ms, reply].
function makeTimings(el) {
  const latencies = [], kernelTimes = [], drawTimes = [], log = [];
  let drawn = 0;
  el.xlTimings = log;
  const painted = (t0, kernelMs, tReply) => requestAnimationFrame(() => { // the bars are painted in this frame
    const t = performance.now();
    pushLast(latencies, t - t0, WINDOW);
    pushLast(kernelTimes, kernelMs, WINDOW);
    drawTimes.push(t); drawn += 1;
    pushLast(log, [t0, t, kernelMs, tReply], LOG_LENGTH);
  });
  const summary = (lost, frameSize) => {
    const now = performance.now();
    while (drawTimes.length && now - drawTimes[0] > 2000) drawTimes.shift();
    const span = drawTimes.length > 1 ? (drawTimes[drawTimes.length - 1] - drawTimes[0]) / 1000 : 0;
    return {
      fps: span > 0 ? (drawTimes.length - 1) / span : 0,
      latency_ms: median(latencies), latency_p95_ms: quantile(latencies, 0.95),
      kernel_ms: median(kernelTimes), frames_drawn: drawn, frames_lost: lost, frame_size: frameSize,
    };
  };
  return { painted, summary };
}

// The stats on the page and to the kernel; `where` names what kernel_ms measured ("kernel", "in the page").
function publishStats(model, el, statsEl, stats, where = "kernel") {
  el.dataset.stats = JSON.stringify(stats);
  statsEl.textContent = stats.latency_ms === null ? "" :
    `${stats.fps.toFixed(1)} frames/s · ${stats.latency_ms.toFixed(0)} ms frame → bars ` +
    `(${where} ${stats.kernel_ms.toFixed(0)} ms)`;
  model.set("stats", stats); model.save_changes();
}
