// LiveEmotion's face finding in the page (backend "browser", widgets/live_emotion.py): the kernel backend's
// pipeline ported to OpenCV.js so that both find the same face and crop it the same way:
//   default_detector (widgets/live_emotion.py): the grey frame halved (area averaging), then
//   find_face (data_loaders/personal.py): largest_face with faces >= 30 px or 8 % of the shorter side, which is
//   detect_faces (data_loaders/face_detection.py): OpenCV's Haar cascades on the equalised and the CLAHE image,
//     with a border, small images enlarged, candidates merged by non-maximum suppression and kept by vote;
//   crop_face (data_loaders/personal.py): a square with a 20 % margin, resized to 48 x 48 by PIL's Lanczos filter
//     (ported below, fixed-point arithmetic included, so the crops are the same bytes).
// The constants are data_loaders/face_detection.py's (tests/test_live_emotion_browser.py checks they agree).
// A part of the widget's module, joined by widgets/frontend.py.

const FRONTAL_CASCADES = [
  ["haarcascade_frontalface_default", 4],
  ["haarcascade_frontalface_alt", 3],
  ["haarcascade_frontalface_alt2", 3],
];
const PROFILE_CASCADE = ["haarcascade_profileface", 4];
const MIN_VOTES = 2;
const STRONG_NEIGHBOURS = 12;
const NMS_IOU = 0.3;
const SCALE_FACTOR = 1.1;
const PAD = 0.12;
const ENLARGE_BELOW = 160;
const SHRINK_ABOVE = 480;
const FIRST_PASSES = ["haarcascade_frontalface_default/0", "haarcascade_frontalface_alt2/1"];
const CASCADE_NAMES = [...FRONTAL_CASCADES.map((c) => c[0]), PROFILE_CASCADE[0]];
const DETECT_DOWNSCALE = 2; // default_detector's halving of the frame
const FACE_MARGIN = 0.2; // crop_face's margin on each side, a fraction of the box

// Python's round(): halves to even (Math.round takes them up), as int(round(x)) in the kernel's code.
function pyRound(x) {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function iou(a, b) {
  const x0 = Math.max(a[0], b[0]), y0 = Math.max(a[1], b[1]);
  const x1 = Math.min(a[0] + a[2], b[0] + b[2]), y1 = Math.min(a[1] + a[3], b[1] + b[3]);
  const inter = Math.max(x1 - x0, 0) * Math.max(y1 - y0, 0);
  return inter / (a[2] * a[3] + b[2] * b[3] - inter);
}

// cv2.dnn.NMSBoxes(boxes, scores, 0, NMS_IOU): indices by score (stable, descending), each kept when it overlaps
// no kept box by more than NMS_IOU.
function nmsBoxes(boxes, scores) {
  const order = scores.map((s, i) => [s, i]).filter(([s]) => s > 0).sort((a, b) => b[0] - a[0]).map((p) => p[1]);
  const kept = [];
  for (const i of order) if (kept.every((k) => iou(boxes[i], boxes[k]) <= NMS_IOU)) kept.push(i);
  return kept;
}

// face_detection._merge: [[box, votes]] of the groups that enough passes (or one strong pass) found.
function mergeCandidates(boxes, scores, ids) {
  const kept = [];
  for (const i of nmsBoxes(boxes, scores)) {
    const group = boxes.map((b, j) => j).filter((j) => iou(boxes[i], boxes[j]) > NMS_IOU);
    const votes = new Set(group.map((j) => ids[j])).size;
    if (votes >= MIN_VOTES || scores[i] >= STRONG_NEIGHBOURS) {
      const mean = [0, 1, 2, 3].map((c) => group.reduce((s, j) => s + boxes[j][c], 0) / group.length);
      kept.push([mean, votes]);
    }
  }
  return kept;
}

// The candidates of some detection passes, added to `found` ({ boxes, scores, ids }).
function runPasses(cv, cascades, passes, smallest, found) {
  const objects = new cv.RectVector(), counts = new cv.IntVector(), flipped = new cv.Mat();
  try {
    for (const p of passes) {
      let src = p.image;
      if (p.mirrored) { cv.flip(p.image, flipped, 1); src = flipped; }
      cascades[p.cascade].detectMultiScale2(src, objects, counts, SCALE_FACTOR, p.neighbours, 0,
        new cv.Size(smallest, smallest), new cv.Size(0, 0));
      for (let k = 0; k < objects.size(); k += 1) {
        const r = objects.get(k);
        found.boxes.push([p.mirrored ? src.cols - r.x - r.width : r.x, r.y, r.width, r.height]);
        found.scores.push(counts.get(k));
        found.ids.push(2 * p.run + p.contrast);
      }
    }
  } finally {
    objects.delete(); counts.delete(); flipped.delete();
  }
}

// detect_faces(grey, min_size=minSize): every face of a CV_8UC1 Mat as [x, y, w, h], largest first.
function detectFaces(cv, cascades, grey, minSize) {
  const h0 = grey.rows, w0 = grey.cols;
  if (Math.min(h0, w0) < 8) return [];
  let enlarge = Math.max(1, ENLARGE_BELOW / Math.min(h0, w0));
  if (enlarge === 1) enlarge = Math.min(enlarge, SHRINK_ABOVE / Math.max(h0, w0));
  const scaled = new cv.Mat(), work = new cv.Mat(), equalised = new cv.Mat(), clahed = new cv.Mat();
  const clahe = new cv.CLAHE(2.0, new cv.Size(8, 8));
  try {
    if (enlarge === 1) grey.copyTo(scaled);
    else cv.resize(grey, scaled, new cv.Size(0, 0), enlarge, enlarge, enlarge > 1 ? cv.INTER_CUBIC : cv.INTER_AREA);
    const pad = pyRound(PAD * Math.max(scaled.rows, scaled.cols));
    cv.copyMakeBorder(scaled, work, pad, pad, pad, pad, cv.BORDER_REPLICATE);
    const smallest = pyRound(minSize * enlarge);
    cv.equalizeHist(work, equalised);
    clahe.apply(work, clahed);
    const runs = FRONTAL_CASCADES.map(([name, n]) => [name, n, false]);
    runs.push([PROFILE_CASCADE[0], PROFILE_CASCADE[1], false], [PROFILE_CASCADE[0], PROFILE_CASCADE[1], true]);
    const passes = [];
    runs.forEach(([cascade, neighbours, mirrored], run) => [equalised, clahed].forEach((image, contrast) =>
      passes.push({ run, cascade, neighbours, mirrored, contrast, image })));
    const first = (p) => FIRST_PASSES.includes(p.cascade + "/" + p.contrast);
    const found = { boxes: [], scores: [], ids: [] };
    runPasses(cv, cascades, passes.filter(first), smallest, found);
    let keep = found.boxes.length ? mergeCandidates(found.boxes, found.scores, found.ids) : [];
    if (!keep.some(([, votes]) => votes >= MIN_VOTES)) {
      runPasses(cv, cascades, passes.filter((p) => !first(p)), smallest, found);
      keep = found.boxes.length ? mergeCandidates(found.boxes, found.scores, found.ids) : [];
    }
    const out = [];
    for (const [[x, y, w, h]] of keep) {
      const x0 = Math.max(0, (x - pad) / enlarge), y0 = Math.max(0, (y - pad) / enlarge);
      const x1 = Math.min(w0, (x + w - pad) / enlarge), y1 = Math.min(h0, (y + h - pad) / enlarge);
      if (x1 - x0 >= 4 && y1 - y0 >= 4) out.push([pyRound(x0), pyRound(y0), pyRound(x1 - x0), pyRound(y1 - y0)]);
    }
    return out.sort((a, b) => b[2] * b[3] - a[2] * a[3]);
  } finally {
    scaled.delete(); work.delete(); equalised.delete(); clahed.delete(); clahe.delete();
  }
}

// default_detector() on a grey frame (Uint8Array, w x h): the largest face as [x, y, w, h] pixels, or null.
function findFace(cv, cascades, grey, w, h) {
  const frame = cv.matFromArray(h, w, cv.CV_8UC1, grey), small = new cv.Mat();
  try {
    cv.resize(frame, small, new cv.Size(Math.max(1, Math.floor(w / DETECT_DOWNSCALE)),
      Math.max(1, Math.floor(h / DETECT_DOWNSCALE))), 0, 0, cv.INTER_AREA);
    const minSize = Math.max(30, Math.floor(0.08 * Math.min(small.rows, small.cols)));
    const faces = detectFaces(cv, cascades, small, minSize);
    return faces.length ? faces[0].map((v) => v * DETECT_DOWNSCALE) : null;
  } finally {
    frame.delete(); small.delete();
  }
}

// ---- PIL's Image.resize(..., Image.Resampling.LANCZOS) for 8-bit grey images (Pillow's libImaging/Resample.c)
const PRECISION_BITS = 32 - 8 - 2;

function sinc(x) {
  if (x === 0) return 1;
  x *= Math.PI;
  return Math.sin(x) / x;
}

function lanczos(x) {
  return x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0;
}

// precompute_coeffs + normalize_coeffs_8bpc: for each output pixel its first input pixel, count and weights.
function resampleCoefficients(inSize, outSize) {
  const scale = inSize / outSize, filterScale = Math.max(scale, 1), support = 3 * filterScale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2), weights = new Int32Array(outSize * ksize);
  for (let xx = 0; xx < outSize; xx += 1) {
    const center = (xx + 0.5) * scale, ss = 1 / filterScale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const count = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    const k = new Float64Array(count);
    let total = 0;
    for (let x = 0; x < count; x += 1) { k[x] = lanczos((x + xmin - center + 0.5) * ss); total += k[x]; }
    for (let x = 0; x < count; x += 1) {
      const v = total !== 0 ? k[x] / total : k[x];
      weights[xx * ksize + x] = Math.trunc(v < 0 ? -0.5 + v * (1 << PRECISION_BITS) : 0.5 + v * (1 << PRECISION_BITS));
    }
    bounds[xx * 2] = xmin; bounds[xx * 2 + 1] = count;
  }
  return { bounds, weights, ksize };
}

function clip8(v) {
  if (v >= (1 << PRECISION_BITS) * 256) return 255;
  if (v <= 0) return 0;
  return Math.floor(v / (1 << PRECISION_BITS));
}

// `src` (Uint8Array, sw x sh) resized to dw x dh like PIL: a horizontal pass over the rows the vertical pass
// reads, then the vertical pass, each rounded to 8 bits.
function resizeLanczos(src, sw, sh, dw, dh) {
  const horizontal = resampleCoefficients(sw, dw), vertical = resampleCoefficients(sh, dh);
  const first = vertical.bounds[0], last = vertical.bounds[dh * 2 - 2] + vertical.bounds[dh * 2 - 1];
  let rows = src, width = sw, offset = 0;
  if (dw !== sw) {
    rows = new Uint8Array(dw * (last - first));
    for (let y = first; y < last; y += 1) {
      for (let xx = 0; xx < dw; xx += 1) {
        const xmin = horizontal.bounds[xx * 2], count = horizontal.bounds[xx * 2 + 1];
        let acc = 1 << (PRECISION_BITS - 1);
        for (let x = 0; x < count; x += 1) acc += src[y * sw + x + xmin] * horizontal.weights[xx * horizontal.ksize + x];
        rows[(y - first) * dw + xx] = clip8(acc);
      }
    }
    width = dw; offset = first;
  }
  if (dh === sh && dw !== sw) return rows;
  const out = new Uint8Array(dw * dh);
  for (let yy = 0; yy < dh; yy += 1) {
    const ymin = vertical.bounds[yy * 2] - offset, count = vertical.bounds[yy * 2 + 1];
    for (let xx = 0; xx < dw; xx += 1) {
      let acc = 1 << (PRECISION_BITS - 1);
      for (let y = 0; y < count; y += 1) acc += rows[(y + ymin) * width + xx] * vertical.weights[yy * vertical.ksize + y];
      out[yy * dw + xx] = clip8(acc);
    }
  }
  return out;
}

// crop_face(grey, box, 0.2, size) / 255, as crop_for_model hands it to the model: Float32Array(size * size).
// Also returns the uint8 crop (for Save).
function cropForModel(grey, w, h, box, size) {
  const [x, y, bw, bh] = box;
  let side = pyRound(Math.max(bw, bh) * (1 + 2 * FACE_MARGIN));
  side = Math.max(1, Math.min(side, w, h));
  const cx = x + bw / 2, cy = y + bh / 2;
  const left = pyRound(Math.min(Math.max(cx - side / 2, 0), w - side));
  const top = pyRound(Math.min(Math.max(cy - side / 2, 0), h - side));
  const crop = new Uint8Array(side * side);
  for (let r = 0; r < side; r += 1) crop.set(grey.subarray((top + r) * w + left, (top + r) * w + left + side), r * side);
  const resized = side === size ? crop : resizeLanczos(crop, side, side, size, size);
  return { pixels: resized, input: Float32Array.from(resized, (v) => v / 255) };
}
