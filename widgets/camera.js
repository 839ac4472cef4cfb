// The webcam start shared by the camera widgets (capture.js, live_emotion.js): one getUserMedia request with the
// kit's constraints, the reason when there is no camera, and stopping the tracks when the view goes away.
// A part, not a module: widgets/frontend.py joins it before the widget's own parts into the widget's one _esm.

const CAMERA_CONSTRAINTS = { video: { width: 640, height: 480, frameRate: { ideal: 60 } }, audio: false };
const NO_CAMERA_ACCESS = "unavailable (this browser or page offers no camera access)";

// Why the camera could not start, from getUserMedia's error: what camera_state says after "No camera: ".
function describeCameraError(err) {
  return err.name === "NotAllowedError" ? "permission refused (NotAllowedError)"
    : err.name === "NotFoundError" ? "none found (NotFoundError)"
    : "unavailable (" + err.name + ": " + err.message + ")";
}

function stopTracks(stream) {
  stream.getTracks().forEach((t) => t.stop());
}

// Ask for the camera and show it in `video`. Then onLive(stream) is called once the preview is playing, or
// onFail(reason) with why there is none (`describe(err)` names a refusal; describeCameraError by default; an
// error thrown by onLive is reported the same way). Returns { stream, stop() }: stop() ends the tracks, also
// those of a camera granted after the view was closed.
function startCamera(video, { onLive, onFail, describe = describeCameraError }) {
  const camera = { stream: null, stopped: false };
  camera.stop = () => {
    camera.stopped = true;
    if (camera.stream) stopTracks(camera.stream);
  };
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    onFail(NO_CAMERA_ACCESS);
    return camera;
  }
  navigator.mediaDevices.getUserMedia(CAMERA_CONSTRAINTS)
    .then((stream) => {
      if (camera.stopped) { stopTracks(stream); return; }
      camera.stream = stream; video.srcObject = stream; video.play().catch(() => {});
      onLive(stream);
    })
    .catch((err) => onFail(describe(err)));
  return camera;
}
