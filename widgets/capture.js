// PhotoCapture's camera part (widgets/capture.py): live preview, countdown, capture.
// A capture sends {kind: "capture", jpeg: <base64>} to the kernel, which saves it; camera_state says whether
// the camera is live, starting, or why there is none (the Python side then offers the upload box).

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
  let stream = null;
  const setState = (value) => { model.set("camera_state", value); model.save_changes(); };
  const showState = () => {
    const s = model.get("camera_state");
    state.textContent = s === "live" ? "Camera on. Pick the expression and split below, then capture."
      : s === "starting" ? "Asking the browser for the camera…"
      : "No camera: " + s + ". Use the upload box below instead.";
    shot.disabled = s !== "live";
  };
  model.on("change:camera_state", showState);
  showState();
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    setState("unavailable (this browser or page offers no camera access)");
  } else {
    navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false })
      .then((s) => { stream = s; video.srcObject = s; video.play(); setState("live"); })
      .catch((err) => setState("denied or unavailable (" + err.name + ")"));
  }
  shot.addEventListener("click", () => {
    let left = model.get("countdown");
    shot.disabled = true;
    const tick = () => {
      if (left > 0) { count.textContent = String(left); left -= 1; setTimeout(tick, 1000); return; }
      count.textContent = "";
      const canvas = document.createElement("canvas");
      canvas.width = video.videoWidth || 640; canvas.height = video.videoHeight || 480;
      canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
      const jpeg = canvas.toDataURL("image/jpeg", 0.92).split(",")[1];
      model.send({ kind: "capture", jpeg });
      shot.disabled = model.get("camera_state") !== "live";
    };
    tick();
  });
  return () => { if (stream) stream.getTracks().forEach((t) => t.stop()); };
}
export default { render };
