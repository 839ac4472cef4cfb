// LiveEmotion's browser side: camera preview, grey frames to the kernel (one in flight), box and bars drawn back.
// Timing of each frame: copied from the preview (t0) → its bars painted (the animation frame after the update).

const WINDOW = 60; // frames the reported medians cover
const NO_ANSWER = "The kernel has not answered for 3 s: is it busy computing, or was it restarted? " +
  "(After a restart, run this cell again.)";

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

function render({ model, el }) {
  el.classList.add("xl-live");
  el.innerHTML = `
    <div class="xl-live-stage">
      <video playsinline muted></video>
      <canvas class="xl-live-overlay"></canvas>
      <div class="xl-live-camera"></div>
    </div>
    <div class="xl-live-side">
      <div class="xl-live-label">…</div>
      <div class="xl-live-bars"></div>
      <div class="xl-live-controls">
        <button class="xl-live-pause" disabled>Pause</button>
        <button class="xl-live-save" disabled>Save</button>
        <input class="xl-live-folder" type="text" placeholder="folder for Save" />
      </div>
      <div class="xl-live-message"></div>
      <div class="xl-live-stats"></div>
    </div>`;
  const video = el.querySelector("video");
  const overlay = el.querySelector(".xl-live-overlay");
  const cameraLine = el.querySelector(".xl-live-camera");
  const labelEl = el.querySelector(".xl-live-label");
  const barsEl = el.querySelector(".xl-live-bars");
  const pauseBtn = el.querySelector(".xl-live-pause");
  const saveBtn = el.querySelector(".xl-live-save");
  const folder = el.querySelector(".xl-live-folder");
  const messageEl = el.querySelector(".xl-live-message");
  const statsEl = el.querySelector(".xl-live-stats");
  const grab = document.createElement("canvas");
  const grabCtx = grab.getContext("2d", { willReadFrequently: true });

  const names = model.get("class_names");
  const bars = names.map((name) => {
    const row = document.createElement("div");
    row.className = "xl-live-bar";
    row.innerHTML = `<span class="xl-live-name"></span><span class="xl-live-track"><span class="xl-live-fill">` +
      `</span></span><span class="xl-live-value"></span>`;
    row.querySelector(".xl-live-name").textContent = name;
    barsEl.appendChild(row);
    return { row, fill: row.querySelector(".xl-live-fill"), value: row.querySelector(".xl-live-value") };
  });

  let stream = null, stopped = false, inFlight = null, nextId = 1, lastSent = 0, box = null, boxSize = null;
  const viewKey = Math.random().toString(36).slice(2, 10);
  const latencies = [], kernelTimes = [], drawTimes = [];
  let drawn = 0, lost = 0;
  // every frame's timings (the last 10,000), for benchmarks that read the page: [t0, painted, kernel ms, reply]
  const log = [];
  el.xlTimings = log;

  const setCamera = (state) => { model.set("camera_state", state); model.save_changes(); };
  const showCamera = () => {
    const s = model.get("camera_state");
    cameraLine.textContent = s === "live" ? "" : s === "starting" ? "Asking the browser for the camera…"
      : "No camera: " + s + ". Allow the camera for this page (the camera icon in the address bar) and run " +
        "the cell again.";
    cameraLine.style.display = s === "live" ? "none" : "flex";
    pauseBtn.disabled = s !== "live";
    saveBtn.disabled = s !== "live";
  };
  const showPaused = () => {
    const paused = model.get("paused");
    pauseBtn.textContent = paused ? "Resume" : "Pause";
    el.classList.toggle("xl-live-paused", paused);
    if (paused) video.pause(); else if (stream) video.play().catch(() => {});
  };
  const showMirror = () => el.classList.toggle("xl-live-mirror", model.get("mirror"));
  model.on("change:camera_state", showCamera);
  model.on("change:paused", showPaused);
  model.on("change:mirror", showMirror);
  model.on("change:message", () => { messageEl.textContent = model.get("message"); });
  model.on("change:save_folder", () => {
    if (folder.value !== model.get("save_folder")) folder.value = model.get("save_folder");
  });
  folder.value = model.get("save_folder");
  messageEl.textContent = model.get("message");
  showCamera(); showMirror();

  pauseBtn.addEventListener("click", () => { model.set("paused", !model.get("paused")); model.save_changes(); });
  folder.addEventListener("change", () => { model.set("save_folder", folder.value); model.save_changes(); });
  saveBtn.addEventListener("click", () => {
    model.set("save_folder", folder.value); model.save_changes(); model.send({ kind: "save" });
  });

  const drawBox = () => {
    const w = video.clientWidth, h = video.clientHeight;
    if (overlay.width !== w || overlay.height !== h) { overlay.width = w; overlay.height = h; }
    const ctx = overlay.getContext("2d");
    ctx.clearRect(0, 0, w, h);
    if (!box || !boxSize) return;
    // the frame was scaled from the video; the video is shown letter-boxed ("contain") in the element
    const scale = Math.min(w / boxSize[0], h / boxSize[1]);
    const dx = (w - boxSize[0] * scale) / 2, dy = (h - boxSize[1] * scale) / 2;
    ctx.lineWidth = 3; ctx.strokeStyle = "#d1495b";
    ctx.strokeRect(dx + box[0] * scale, dy + box[1] * scale, box[2] * scale, box[3] * scale);
  };

  const showResult = (msg) => {
    if (msg.error) messageEl.textContent = msg.error;
    else if (messageEl.textContent === NO_ANSWER) messageEl.textContent = "";
    if (msg.face && msg.probabilities) {
      box = msg.box;
      const top = msg.probabilities.indexOf(Math.max(...msg.probabilities));
      msg.probabilities.forEach((p, i) => {
        bars[i].fill.style.width = (100 * p).toFixed(1) + "%";
        bars[i].value.textContent = Math.round(100 * p) + "%";
        bars[i].row.classList.toggle("xl-live-top", i === top);
      });
      labelEl.textContent = msg.label;
      el.classList.remove("xl-live-noface");
    } else if (!msg.error) {
      box = null; // no face: the bars keep their last values, greyed out
      labelEl.textContent = msg.label;
      el.classList.add("xl-live-noface");
    }
    el.dataset.label = labelEl.textContent;
    drawBox();
  };

  const publishStats = () => {
    const now = performance.now();
    while (drawTimes.length && now - drawTimes[0] > 2000) drawTimes.shift();
    const span = drawTimes.length > 1 ? (drawTimes[drawTimes.length - 1] - drawTimes[0]) / 1000 : 0;
    const stats = {
      fps: span > 0 ? (drawTimes.length - 1) / span : 0,
      latency_ms: median(latencies), latency_p95_ms: quantile(latencies, 0.95),
      kernel_ms: median(kernelTimes), frames_drawn: drawn, frames_lost: lost,
      frame_size: boxSize ? [grab.width, grab.height] : null,
    };
    el.dataset.stats = JSON.stringify(stats);
    statsEl.textContent = stats.latency_ms === null ? "" :
      `${stats.fps.toFixed(1)} frames/s · ${stats.latency_ms.toFixed(0)} ms frame → bars ` +
      `(kernel ${stats.kernel_ms.toFixed(0)} ms)`;
    model.set("stats", stats); model.save_changes();
  };
  const statsTimer = setInterval(publishStats, 1000);

  model.on("msg:custom", (msg) => {
    if (!msg || msg.kind !== "result" || !inFlight || msg.id !== inFlight.id) return;
    const t0 = inFlight.t0, tReply = performance.now();
    inFlight = null;
    showResult(msg);
    trySend();
    requestAnimationFrame(() => { // the bars are painted in this frame
      const t = performance.now();
      latencies.push(t - t0); if (latencies.length > WINDOW) latencies.shift();
      kernelTimes.push(msg.kernel_ms); if (kernelTimes.length > WINDOW) kernelTimes.shift();
      drawTimes.push(t); drawn += 1;
      log.push([t0, t, msg.kernel_ms, tReply]); if (log.length > 10000) log.shift();
    });
  });

  const sendFrame = () => {
    const vw = video.videoWidth, vh = video.videoHeight;
    if (!vw || !vh) return;
    const w = Math.min(model.get("frame_width"), vw), h = Math.round(vh * w / vw);
    if (grab.width !== w || grab.height !== h) { grab.width = w; grab.height = h; }
    const t0 = performance.now();
    grabCtx.drawImage(video, 0, 0, w, h);
    const rgba = grabCtx.getImageData(0, 0, w, h).data;
    const grey = new Uint8Array(w * h);
    for (let i = 0, j = 0; j < grey.length; i += 4, j += 1) { // ITU-R BT.601 luma, as PIL's convert("L")
      grey[j] = (rgba[i] * 299 + rgba[i + 1] * 587 + rgba[i + 2] * 114 + 500) / 1000;
    }
    boxSize = [w, h];
    const id = viewKey + "-" + nextId++; // replies reach every view of the widget; each takes its own
    inFlight = { id, t0 };
    lastSent = t0;
    model.send({ kind: "frame", id, width: w, height: h, t: t0 }, undefined, [grey.buffer]);
  };

  // A frame goes out when the camera has shown a new one since the last send and no reply is awaited: on each new
  // video frame, and right after a reply, so a fast kernel gets the freshest frame without waiting a frame period.
  let fresh = false, timer = null;
  const trySend = () => {
    const now = performance.now();
    if (inFlight && now - inFlight.t0 > 3000) { // the kernel is busy computing or was restarted
      inFlight = null; lost += 1;
      messageEl.textContent = NO_ANSWER;
    }
    if (!stream || !fresh || model.get("paused") || inFlight || video.readyState < 2) return;
    const wait = lastSent + 1000 / Math.max(model.get("max_fps"), 0.1) - now;
    if (wait > 0) { // too soon for max_fps: come back exactly when it is time
      if (timer === null) timer = setTimeout(() => { timer = null; trySend(); }, wait);
      return;
    }
    fresh = false;
    sendFrame();
  };
  const onVideoFrame = () => {
    if (stopped) return;
    fresh = true;
    trySend();
    if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(onVideoFrame);
    else setTimeout(onVideoFrame, 15);
  };
  const poll = setInterval(trySend, 250); // the lost-reply timeout ends without a reply or a new video frame

  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    setCamera("unavailable (this browser or page offers no camera access)");
  } else {
    navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false })
      .then((s) => {
        if (stopped) { s.getTracks().forEach((t) => t.stop()); return; }
        stream = s; video.srcObject = s; video.play().catch(() => {});
        setCamera("live"); showPaused(); onVideoFrame();
      })
      .catch((err) => setCamera(err.name === "NotAllowedError" ? "permission refused (NotAllowedError)"
        : err.name === "NotFoundError" ? "none found (NotFoundError)"
        : "unavailable (" + err.name + ": " + err.message + ")"));
  }
  const resize = new ResizeObserver(drawBox);
  resize.observe(video);

  return () => {
    stopped = true;
    clearInterval(statsTimer); clearInterval(poll); clearTimeout(timer); resize.disconnect();
    if (stream) stream.getTracks().forEach((t) => t.stop());
  };
}

export default { render };
