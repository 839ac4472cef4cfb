// LiveEmotion's in-page backend (backend "browser", widgets/live_emotion.py): on each camera frame the face is found
// and cropped in the page (live_emotion_faces.js: the kernel backend's detector and crop, in OpenCV.js) and the model
// runs in the page (onnxruntime-web, the model exported to ONNX by the kernel); the probabilities are smoothed as the
// kernel smooths them and painted. The kernel gets no frame: the smoothed result travels with the stats, about once a
// second. The libraries and the model arrive once from the kernel, which reads them from widgets/vendor/ (installed
// from npm by scripts/vendor_js.sh): nothing is downloaded. A part of the widget's module, joined by
// widgets/frontend.py.

const DETECT_EVERY = 3; // a face search on one frame in three; the frames between are cropped at the last box
const LIBRARIES_KEY = "__expressionLabLibraries"; // the page's one copy of OpenCV.js and onnxruntime-web
const NO_FACE_LABEL = "no face"; // widgets/live_emotion.py's NO_FACE

function bytesOf(view) {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

function blobUrl(bytes, type) {
  return URL.createObjectURL(new Blob([bytes], { type }));
}

// onnxruntime-web (its WebAssembly build, one thread: more need a cross-origin isolated page, which JupyterLab is
// not) and OpenCV.js with the face cascades, from the files the kernel sent ({ name: Uint8Array }).
async function loadLibraries(files) {
  const ort = await import(blobUrl(files["ort.wasm.min.mjs"], "text/javascript"));
  ort.env.wasm.wasmPaths = {
    mjs: blobUrl(files["ort-wasm-simd-threaded.mjs"], "text/javascript"),
    wasm: blobUrl(files["ort-wasm-simd-threaded.wasm"], "application/wasm"),
  };
  ort.env.wasm.numThreads = 1;
  // opencv.js is a UMD bundle: given a CommonJS `module` it puts OpenCV there instead of on window
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
  return { ort, cv, cascades }; // (not cv itself: OpenCV's module has a `then` and would be awaited forever)
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
// { ort, cv, cascades, session, input, output, side }.
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

// The in-page analysis of one view. start() once the camera is live; show(reply, frameSize, t0, pageMs) is called
// for each analysed frame with a reply shaped like the kernel's; result() is what the kernel is told; last() the
// last frame analysed ({ grey, w, h, box, raw, crop }, for Save and for tests).
function makeInPageRunner(model, video, engine, names, show) {
  const grab = document.createElement("canvas");
  const grabCtx = grab.getContext("2d", { willReadFrequently: true });
  let live = false, stopped = false, busy = false, lastRun = 0, count = 0, box = null;
  let smoothed = null, lastT = null, label = "", last = null;
  const totals = { frames: 0, faces: 0, no_face_frames: 0, errors: 0, last_error: "" };
  const analyse = async () => {
    const frame = greyFrame(video, grab, grabCtx, model.get("frame_width"));
    if (!frame) return;
    const start = performance.now();
    if (count % DETECT_EVERY === 0 || box === null) box = findFace(engine.cv, engine.cascades, frame.grey, frame.w, frame.h);
    count += 1; totals.frames += 1;
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
    last = { grey: frame.grey, w: frame.w, h: frame.h, box, raw, crop: crop && crop.pixels };
    show(reply, [frame.w, frame.h], frame.t0, performance.now() - start);
  };
  const tick = () => {
    if (!live || stopped || busy || model.get("paused") || video.readyState < 2) return;
    const now = performance.now();
    if (now - lastRun < 1000 / Math.max(model.get("max_fps"), 0.1)) return;
    lastRun = now; busy = true;
    analyse()
      .catch((err) => {
        totals.errors += 1; totals.last_error = String(err);
        show({ face: false, box: null, probabilities: null, label, error: "in the page: " + err }, null, now, 0);
      })
      .finally(() => { busy = false; });
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
