// LiveEmotion's browser side (widgets/live_emotion.py): camera preview, and either grey frames to the kernel (one in
// flight) with box and bars drawn back (backend "kernel"), or the face and the model in the page (backend
// "browser"). The widget's one module is camera.js (the camera start), live_emotion_timings.js,
// live_emotion_painter.js, live_emotion_sender.js, live_emotion_faces.js, live_emotion_browser.js and this file,
// joined in that order by widgets/frontend.py: render lays the widget out and wires the parts.

const NO_ANSWER = "The kernel has not answered for 3 s: is it busy computing, or was it restarted? " +
  "(After a restart, run this cell again.)";

// The widget's elements, by role.
function layout(el) {
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
  const q = (selector) => el.querySelector(selector);
  return {
    video: q("video"), overlay: q(".xl-live-overlay"), cameraLine: q(".xl-live-camera"),
    labelEl: q(".xl-live-label"), barsEl: q(".xl-live-bars"), pauseBtn: q(".xl-live-pause"),
    saveBtn: q(".xl-live-save"), folder: q(".xl-live-folder"), messageEl: q(".xl-live-message"),
    statsEl: q(".xl-live-stats"),
  };
}

// What the preview says for a camera_state ("" once live).
function cameraText(s) {
  return s === "live" ? "" : s === "starting" ? "Asking the browser for the camera…"
    : "No camera: " + s + ". Allow the camera for this page (the camera icon in the address bar) and run " +
      "the cell again.";
}

// Pause, Save, the folder box, the camera line and the message follow the model, and the other way round.
// Returns showPaused, called again once the camera is live (cameraLive() says whether it is).
function bindControls(model, el, ui, cameraLive, save) {
  const { video, cameraLine, pauseBtn, saveBtn, folder, messageEl } = ui;
  const showCamera = () => {
    const s = model.get("camera_state");
    cameraLine.textContent = cameraText(s);
    cameraLine.style.display = s === "live" ? "none" : "flex";
    pauseBtn.disabled = s !== "live";
    saveBtn.disabled = s !== "live";
  };
  const showPaused = () => {
    const paused = model.get("paused");
    pauseBtn.textContent = paused ? "Resume" : "Pause";
    el.classList.toggle("xl-live-paused", paused);
    if (paused) video.pause(); else if (cameraLive()) video.play().catch(() => {});
  };
  const showMirror = () => el.classList.toggle("xl-live-mirror", model.get("mirror"));
  const keepFolder = () => { model.set("save_folder", folder.value); model.save_changes(); };
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
  folder.addEventListener("change", keepFolder);
  // the folder goes with the request too: ipywidgets holds state updates back while the kernel is busy, but not
  // custom messages, so under load the kernel could get "save" before the new folder
  saveBtn.addEventListener("click", () => { keepFolder(); save(folder.value); });
  return showPaused;
}

// A reply's error replaces the message line; a good reply clears the "no answer" notice.
function showReplyError(messageEl, error) {
  if (error) messageEl.textContent = error;
  else if (messageEl.textContent === NO_ANSWER) messageEl.textContent = "";
}

// The kernel backend: frames to the kernel (live_emotion_sender.js), its replies painted.
function renderKernelBackend(model, ui, painter, timings) {
  const sender = makeSender(model, ui.video, () => { ui.messageEl.textContent = NO_ANSWER; });
  model.on("msg:custom", (msg) => {
    const sent = sender.take(msg);
    if (!sent) return;
    const tReply = performance.now();
    showReplyError(ui.messageEl, msg.error);
    painter.show(msg, sent.size);
    sender.trySend();
    timings.painted(sent.t0, msg.kernel_ms, tReply);
  });
  return {
    start: () => sender.start(), stop: () => sender.stop(),
    stats: () => timings.summary(sender.lost(), sender.frameSize()),
    save: (folder) => model.send({ kind: "save", folder }),
  };
}

// The browser backend: everything in the page (live_emotion_browser.js); the kernel gets the smoothed result with
// the stats once a second, and the frame only when Save is pressed.
function renderBrowserBackend(model, el, ui, painter, timings) {
  let runner = null, wanted = false, stopped = false;
  ui.messageEl.textContent = "Loading the model into this page…";
  startEngine(model)
    .then((engine) => {
      if (stopped) return;
      ui.messageEl.textContent = "";
      runner = makeInPageRunner(model, ui.video, engine, model.get("class_names"), (reply, size, t0, pageMs) => {
        showReplyError(ui.messageEl, reply.error);
        if (!size) return; // a failure: the message line says what
        painter.show(reply, size);
        el.xlLastAnalysis = runner.last();
        timings.painted(t0, pageMs, performance.now());
      });
      if (wanted) runner.start();
    })
    .catch((err) => { ui.messageEl.textContent = "The model could not run in this page: " + err; });
  return {
    start: () => { wanted = true; if (runner) runner.start(); },
    stop: () => { stopped = true; if (runner) runner.stop(); },
    stats: () => {
      if (runner) model.set("result", runner.result()); // sent with the stats: one message a second
      const last = runner && runner.last();
      return timings.summary(0, last ? [last.w, last.h] : null);
    },
    save: (folder) => {
      const last = runner && runner.last();
      if (!last) { model.send({ kind: "save", folder }); return; }
      model.send({ kind: "save", folder, width: last.w, height: last.h, box: last.box }, undefined,
        [last.grey.slice().buffer]);
    },
  };
}

function render({ model, el }) {
  const ui = layout(el);
  const painter = makePainter(el, ui, model.get("class_names"));
  const timings = makeTimings(el);
  const inPage = model.get("backend") === "browser";
  const backend = inPage ? renderBrowserBackend(model, el, ui, painter, timings)
    : renderKernelBackend(model, ui, painter, timings);
  let camera = null;
  const showPaused = bindControls(model, el, ui, () => camera !== null && camera.stream !== null, backend.save);
  const statsTimer = setInterval(
    () => publishStats(model, el, ui.statsEl, backend.stats(), inPage ? "in the page" : "kernel"), 1000);
  const setCamera = (state) => { model.set("camera_state", state); model.save_changes(); };
  const onLive = () => { setCamera("live"); showPaused(); backend.start(); };
  camera = startCamera(ui.video, { onLive, onFail: setCamera });
  const resize = new ResizeObserver(painter.redraw);
  resize.observe(ui.video);
  return () => {
    backend.stop(); clearInterval(statsTimer); resize.disconnect(); camera.stop();
  };
}

export default { render };
