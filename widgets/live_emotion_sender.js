// LiveEmotion's sender (widgets/live_emotion.py): grey frames copied from the preview and sent to the kernel as
// binary messages, at most one in flight and at most max_fps a second, so a slow kernel lowers the frame rate
// instead of building a queue. A part of the widget's module, joined by widgets/frontend.py.

const LOST_AFTER_MS = 3000; // a frame unanswered this long is given up (the kernel is busy or was restarted)

// The preview drawn into `grab` at most `width` pixels wide (the camera's aspect) and turned grey (ITU-R BT.601
// luma, as PIL's convert("L")): { grey, w, h, t0 } with t0 the copy's time, or null before the video has a size.
function greyFrame(video, grab, grabCtx, width) {
  const vw = video.videoWidth, vh = video.videoHeight;
  if (!vw || !vh) return null;
  const w = Math.min(width, vw), h = Math.round(vh * w / vw);
  if (grab.width !== w || grab.height !== h) { grab.width = w; grab.height = h; }
  const t0 = performance.now();
  grabCtx.drawImage(video, 0, 0, w, h);
  const rgba = grabCtx.getImageData(0, 0, w, h).data;
  const grey = new Uint8Array(w * h);
  for (let i = 0, j = 0; j < grey.length; i += 4, j += 1) {
    grey[j] = (rgba[i] * 299 + rgba[i + 1] * 587 + rgba[i + 2] * 114 + 500) / 1000;
  }
  return { grey, w, h, t0 };
}

// The sender of one view. start() once the camera is live; take(reply) returns the frame in flight the reply
// answers ({ id, t0, size }) or null (another view's reply, or a frame given up); trySend() sends if it is time;
// lost() counts the frames given up (each calls onLost()); frameSize() is the last frame's [W, H] or null.
function makeSender(model, video, onLost) {
  const grab = document.createElement("canvas");
  const grabCtx = grab.getContext("2d", { willReadFrequently: true });
  const viewKey = Math.random().toString(36).slice(2, 10);
  let live = false, stopped = false, fresh = false, timer = null, inFlight = null;
  let nextId = 1, lastSent = 0, lost = 0, size = null;
  const sendFrame = () => {
    const frame = greyFrame(video, grab, grabCtx, model.get("frame_width"));
    if (!frame) return;
    size = [frame.w, frame.h];
    const id = viewKey + "-" + nextId++; // replies reach every view of the widget; each takes its own
    inFlight = { id, t0: frame.t0, size };
    lastSent = frame.t0;
    model.send({ kind: "frame", id, width: frame.w, height: frame.h, t: frame.t0 }, undefined, [frame.grey.buffer]);
  };
  // A frame goes out when the camera has shown a new one since the last send and no reply is awaited: on each new
  // video frame, and right after a reply, so a fast kernel gets the freshest frame without waiting a frame period.
  const trySend = () => {
    const now = performance.now();
    if (inFlight && now - inFlight.t0 > LOST_AFTER_MS) { inFlight = null; lost += 1; onLost(); }
    if (!live || !fresh || model.get("paused") || inFlight || video.readyState < 2) return;
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
  const take = (msg) => {
    if (!msg || msg.kind !== "result" || !inFlight || msg.id !== inFlight.id) return null;
    const sent = inFlight;
    inFlight = null;
    return sent;
  };
  const start = () => { live = true; onVideoFrame(); };
  const stop = () => { stopped = true; clearInterval(poll); clearTimeout(timer); };
  return { start, take, trySend, stop, lost: () => lost, frameSize: () => size };
}
