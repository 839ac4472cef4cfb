// LiveEmotion's in-page backend (backend "browser", widgets/live_emotion.py): the face is found in a Web Worker
// (live_emotion_search_worker.js: the kernel backend's detector in OpenCV.js), at most every SEARCH_EVERY_MS; each
// camera frame is cropped at the last box found (live_emotion_crop.js, the kernel's crop) and the model runs on it
// in the page (onnxruntime-web, the model exported to ONNX by the kernel); the probabilities are smoothed as the
// kernel smooths them and painted. The kernel gets no frame: the smoothed result travels with the stats, about once a
// second. The libraries, the worker's script and the model arrive once from the kernel, which reads the libraries
// from widgets/vendor/ (installed from npm by scripts/vendor_js.sh): nothing is downloaded. A part of the widget's
// module, joined by widgets/frontend.py.

// A face search every 100 ms at most (about 40 ms each on 2 cores: under half of one core), frames between
// cropped at the last box: as the kernel's video analysis tracks a face between its searches.
const SEARCH_EVERY_MS = 100;
const LIBRARIES_KEY = "__expressionLabLibraries"; // the page's one copy of onnxruntime-web and the search worker
const NO_FACE_LABEL = "no face"; // widgets/live_emotion.py's NO_FACE

function bytesOf(view) {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

function blobUrl(bytes, type) {
  return URL.createObjectURL(new Blob([bytes], { type }));
}

// The face-search worker, started from the files the kernel sent; resolves once OpenCV.js is loaded in it to
// { search(grey, w, h) }, which hands grey (Uint8Array, w x h) to the worker and resolves to its reply
// { box, ms, grey, w, h } (grey handed back) or rejects with the worker's error.
function startSearchWorker(files) {
  const worker = new Worker(blobUrl(files["search_worker.js"], "text/javascript"));
  const waiting = new Map();
  let nextId = 1, failed = null;
  const ready = new Promise((resolve, reject) => {
    worker.onmessage = (event) => {
      const msg = event.data;
      if (msg.kind === "ready") { if (msg.error) reject(new Error(msg.error)); else resolve(); return; }
      const answer = waiting.get(msg.id);
      waiting.delete(msg.id);
      if (answer && msg.error) answer.reject(new Error(msg.error));
      else if (answer) answer.resolve(msg);
    };
    worker.onerror = (event) => {
      failed = new Error("the face-search worker failed: " + (event.message || "no message"));
      reject(failed);
      waiting.forEach((answer) => answer.reject(failed));
      waiting.clear();
    };
  });
  const load = { "opencv.js": files["opencv.js"] };
  for (const name of Object.keys(files)) if (name.startsWith("cascade:")) load[name] = files[name];
  worker.postMessage({ kind: "load", files: load });
  const search = (grey, w, h) => new Promise((resolve, reject) => {
    if (failed) { reject(failed); return; }
    const id = nextId++;
    waiting.set(id, { resolve, reject });
    worker.postMessage({ kind: "search", id, grey, w, h }, [grey.buffer]);
  });
  return ready.then(() => ({ search }));
}

// onnxruntime-web (its WebAssembly build, one thread: more need a cross-origin isolated page, which JupyterLab is
// not) and the face-search worker, from the files the kernel sent ({ name: Uint8Array }).
async function loadLibraries(files) {
  const searcher = startSearchWorker(files);
  const ort = await import(blobUrl(files["ort.wasm.min.mjs"], "text/javascript"));
  ort.env.wasm.wasmPaths = {
    mjs: blobUrl(files["ort-wasm-simd-threaded.mjs"], "text/javascript"),
    wasm: blobUrl(files["ort-wasm-simd-threaded.wasm"], "application/wasm"),
  };
  ort.env.wasm.numThreads = 1;
  return { ort, searcher: await searcher };
}

// The libraries of this page: loaded by the first view, from `files`; later views share them.
function pageLibraries(files) {
  if (!window[LIBRARIES_KEY]) {
    if (!files) return Promise.reject(new Error("the libraries were not sent"));
    window[LIBRARIES_KEY] = loadLibraries(files);
  }
  return window[LIBRARIES_KEY];
}

// Ask the kernel for what this view needs (the libraries too when the page has none yet); resolves to
// { ort, searcher, session, input, output, side }.
function startEngine(model) {
  return new Promise((resolve, reject) => {
    const onReply = (msg, buffers) => {
      if (!msg || msg.kind !== "runtime") return;
      model.off("msg:custom", onReply);
      if (msg.error) { reject(new Error(msg.error)); return; }
      const files = {};
      msg.names.forEach((name, i) => { files[name] = bytesOf(buffers[i]); });
      pageLibraries(msg.names.length > 1 ? files : null)
        .then(async (libraries) => {
          const session = await libraries.ort.InferenceSession.create(files["model.onnx"], {
            executionProviders: ["wasm"], graphOptimizationLevel: "all",
          });
          resolve({ ...libraries, session, input: msg.input, output: msg.output, side: msg.side });
        })
        .catch(reject);
    };
    model.on("msg:custom", onReply);
    model.send({ kind: "runtime", libraries: !window[LIBRARIES_KEY] });
  });
}

// smooth_probabilities of widgets/live_emotion.py: an exponential moving average whose weight follows the time
// between frames (dtS seconds), tau the time constant (0: none).
function smoothProbabilities(previous, current, dtS, tau) {
  if (previous === null || tau <= 0) return current.slice();
  const weight = 1 - Math.exp(-Math.max(dtS, 0) / tau);
  return previous.map((p, i) => p + weight * (current[i] - p));
}

// The face search of one view, as a function track(frame): it posts the frame to the worker when no search is
// running and the last was posted SEARCH_EVERY_MS ago (at once while it has no answer for this frame size), and
// returns the newest answer for frames of this size ({ box or null, grey, w, h, ms }: the frame the box was found
// on) or null before the first.
function makeFaceTracker(searcher, onError) {
  let searching = false, lastPosted = -Infinity, found = null;
  return (frame) => {
    const fits = found !== null && found.w === frame.w && found.h === frame.h;
    if (!searching && (!fits || frame.t0 - lastPosted >= SEARCH_EVERY_MS)) {
      searching = true; lastPosted = frame.t0;
      searcher.search(frame.grey.slice(), frame.w, frame.h)
        .then((answer) => { found = answer; })
        .catch(onError)
        .finally(() => { searching = false; });
    }
    return fits ? found : null;
  };
}

// The in-page analysis of one view. start() once the camera is live; show(reply, frameSize, t0, pageMs) is called
// for each analysed frame with a reply shaped like the kernel's; result() is what the kernel is told; last() the
// last frame analysed ({ grey, w, h, box, raw, crop, searched }: searched is the frame the box was found on, for
// tests), for Save and for tests.
function makeInPageRunner(model, video, engine, names, show) {
  const grab = document.createElement("canvas");
  const grabCtx = grab.getContext("2d", { willReadFrequently: true });
  let live = false, stopped = false, busy = false, lastRun = 0;
  let smoothed = null, lastT = null, label = "", last = null;
  const totals = { frames: 0, faces: 0, no_face_frames: 0, errors: 0, last_error: "" };
  const failed = (err) => {
    totals.errors += 1; totals.last_error = String(err);
    show({ face: false, box: null, probabilities: null, label, error: "in the page: " + err }, null, performance.now(), 0);
  };
  const track = makeFaceTracker(engine.searcher, failed);
  const analyse = async () => {
    const frame = greyFrame(video, grab, grabCtx, model.get("frame_width"));
    if (!frame) return;
    const start = performance.now();
    const found = track(frame);
    if (found === null) return; // the first search of this frame size is still running
    const box = found.box;
    totals.frames += 1;
    let reply, raw = null, crop = null;
    if (box === null) {
      totals.no_face_frames += 1;
      label = NO_FACE_LABEL;
      reply = { face: false, box: null, probabilities: null, label, error: null };
    } else {
      crop = cropForModel(frame.grey, frame.w, frame.h, box, engine.side);
      const input = new engine.ort.Tensor("float32", crop.input, [1, engine.side, engine.side, 1]);
      const out = await engine.session.run({ [engine.input]: input });
      raw = Array.from(out[engine.output].data);
      smoothed = smoothProbabilities(smoothed, raw, lastT === null ? 0 : (frame.t0 - lastT) / 1000, model.get("tau"));
      lastT = frame.t0;
      label = names[smoothed.indexOf(Math.max(...smoothed))];
      totals.faces += 1;
      reply = { face: true, box, probabilities: smoothed, label, error: null };
    }
    last = { grey: frame.grey, w: frame.w, h: frame.h, box, raw, crop: crop && crop.pixels, searched: found };
    show(reply, [frame.w, frame.h], frame.t0, performance.now() - start);
  };
  const tick = () => {
    if (!live || stopped || busy || model.get("paused") || video.readyState < 2) return;
    const now = performance.now();
    if (now - lastRun < 1000 / Math.max(model.get("max_fps"), 0.1)) return;
    lastRun = now; busy = true;
    analyse().catch(failed).finally(() => { busy = false; });
  };
  const onVideoFrame = () => {
    if (stopped) return;
    tick();
    if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(onVideoFrame);
    else setTimeout(onVideoFrame, 15);
  };
  const result = () => ({
    label, probabilities: smoothed, box: last && last.box, face: Boolean(last && last.box), ...totals,
  });
  return {
    start: () => { live = true; onVideoFrame(); },
    stop: () => { stopped = true; },
    result, last: () => last,
  };
}
