// LiveEmotion's face finding in the page (backend "browser", widgets/live_emotion.py): the kernel backend's
// detector ported to OpenCV.js so that both find the same face on the same frame:
//   default_detector (widgets/live_emotion.py): the grey frame halved (area averaging), then
//   find_face (data_loaders/personal.py): largest_face with faces >= 30 px or 8 % of the shorter side, which is
//   detect_faces (data_loaders/face_detection.py): OpenCV's Haar cascades on the equalised and the CLAHE image,
//     with a border, small images enlarged, candidates merged by non-maximum suppression and kept by vote.
// The constants are data_loaders/face_detection.py's (tests/test_live_emotion_backends.py checks they agree).
// A part of the face-search worker (live_emotion_search_worker.js), after live_emotion_crop.js (pyRound).

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
