// PhotoCapture's camera part (widgets/capture.py): live preview, countdown, capture.
// A capture sends {kind: "capture", jpeg: <base64>} to the kernel, which saves it; camera_state says whether
// the camera is live, starting, or why there is none (the Python side then offers the upload box).
// The last part of the widget's module: camera.js (startCamera) comes before it (widgets/frontend.py).

// This widget's wording of a refused camera (the upload box below is the way out).
function captureRefusal(err) {
  return "denied or unavailable (" + err.name + ")";
}

function stateText(s) {
  return s === "live" ? "Camera on. Pick the expression and split below, then capture."
    : s === "starting" ? "Asking the browser for the camera…"
    : "No camera: " + s + ". Use the upload box below instead.";
}

// The preview as a base64 JPEG (no data: prefix), at the camera's size.
function snapshot(video) {
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth || 640; canvas.height = video.videoHeight || 480;
  canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
  return canvas.toDataURL("image/jpeg", 0.92).split(",")[1];
}

// Count down `countdown` seconds over the preview, then send the photo to the kernel.
function countdownCapture(model, video, shot, count) {
  let left = model.get("countdown");
  shot.disabled = true;
  const tick = () => {
    if (left > 0) { count.textContent = String(left); left -= 1; setTimeout(tick, 1000); return; }
    count.textContent = "";
    model.send({ kind: "capture", jpeg: snapshot(video) });
    shot.disabled = model.get("camera_state") !== "live";
  };
  tick();
}

function render({ model, el }) {
  el.classList.add("xl-capture");
  el.innerHTML = `
    <div class="xl-row">
      <div class="xl-stage">
        <video playsinline muted></video>
        <div class="xl-count"></div>
      </div>
      <div>
        <button class="xl-shot" disabled>📸 Capture</button>
        <p class="xl-state"></p>
      </div>
    </div>`;
  const video = el.querySelector("video"), shot = el.querySelector(".xl-shot");
  const count = el.querySelector(".xl-count"), state = el.querySelector(".xl-state");
  const setState = (value) => { model.set("camera_state", value); model.save_changes(); };
  const showState = () => {
    state.textContent = stateText(model.get("camera_state"));
    shot.disabled = model.get("camera_state") !== "live";
  };
  model.on("change:camera_state", showState);
  showState();
  const camera = startCamera(video, { onLive: () => setState("live"), onFail: setState, describe: captureRefusal });
  shot.addEventListener("click", () => countdownCapture(model, video, shot, count));
  return () => camera.stop();
}

export default { render };
