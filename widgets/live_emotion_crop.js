// LiveEmotion's face crop in the page (backend "browser", widgets/live_emotion.py): crop_face of
// data_loaders/personal.py, a square with a 20 % margin resized to 48 x 48 by PIL's Lanczos filter (ported below,
// fixed-point arithmetic included, so the crops are the kernel's bytes), as crop_for_model hands it to the model.
// A part of the widget's module (widgets/frontend.py) and of the face-search worker, whose detector
// (live_emotion_faces.js) rounds with pyRound.

const FACE_MARGIN = 0.2; // crop_face's margin on each side, a fraction of the box

// Python's round(): halves to even (Math.round takes them up), as int(round(x)) in the kernel's code.
function pyRound(x) {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
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
