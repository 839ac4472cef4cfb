// LiveEmotion's face search off the page's main thread (backend "browser", widgets/live_emotion.py): a Web Worker
// that loads OpenCV.js and the Haar cascades once, then answers each grey frame posted to it with findFace's box
// (live_emotion_faces.js). A search takes tens of milliseconds; here it no longer holds up the page, which keeps
// grabbing frames, running the model on the face at the last box and painting while the worker searches.
// widgets/live_emotion.py joins live_emotion_crop.js, live_emotion_faces.js and this file into the worker's one
// classic script (SEARCH_WORKER_PARTS) and sends it to the page with the libraries.
//
// Messages in:  { kind: "load", files: { "opencv.js": Uint8Array, "cascade:<name>": Uint8Array, … } }
//               { kind: "search", id, grey: Uint8Array (w x h, transferred), w, h }
// Messages out: { kind: "ready", error } once loaded (error null, or why it failed);
//               { kind: "found", id, box: [x, y, w, h] or null, error, ms, grey, w, h } (grey transferred back).

let searchEngine = null;

// OpenCV.js (a UMD bundle: given a CommonJS `module` it puts OpenCV there) and the cascades, from the page's files.
async function loadSearchEngine(files) {
  const holder = { exports: {} };
  new Function("module", "exports", "define", new TextDecoder().decode(files["opencv.js"]))(holder, holder.exports);
  const cv = holder.exports;
  await new Promise((resolve) => { if (cv.Mat) resolve(); else cv.onRuntimeInitialized = resolve; });
  const cascades = {};
  for (const name of CASCADE_NAMES) {
    cv.FS_createDataFile("/", name + ".xml", files["cascade:" + name], true, false, false);
    cascades[name] = new cv.CascadeClassifier();
    if (!cascades[name].load(name + ".xml")) throw new Error("OpenCV.js could not read the cascade " + name);
  }
  return { cv, cascades }; // (not cv itself: OpenCV's module has a `then` and would be awaited forever)
}

function searchFrame(msg) {
  const start = performance.now();
  let box = null, error = null;
  try {
    if (!searchEngine) throw new Error("the face search was asked before OpenCV.js was loaded");
    box = findFace(searchEngine.cv, searchEngine.cascades, msg.grey, msg.w, msg.h);
  } catch (err) {
    error = String(err);
  }
  const reply = { kind: "found", id: msg.id, box, error, ms: performance.now() - start, grey: msg.grey, w: msg.w, h: msg.h };
  self.postMessage(reply, [msg.grey.buffer]);
}

self.onmessage = (event) => {
  const msg = event.data;
  if (msg.kind === "search") searchFrame(msg);
  else if (msg.kind === "load") {
    loadSearchEngine(msg.files)
      .then((engine) => { searchEngine = engine; self.postMessage({ kind: "ready", error: null }); })
      .catch((err) => self.postMessage({ kind: "ready", error: String(err) }));
  }
};
