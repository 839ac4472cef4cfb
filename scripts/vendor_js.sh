#!/usr/bin/env bash
# Install the browser libraries of LiveEmotion(model, backend="browser") from npm and copy the files the widget
# sends to the page into widgets/vendor/ (git-ignored), so that the widget works offline afterwards:
#   onnxruntime-web (the model in the page: its ES module and its WebAssembly runtime, single-threaded build)
#   @techstark/opencv-js (OpenCV compiled to WebAssembly: the kit's Haar-cascade face detector in the page)
# Versions are pinned in scripts/vendor_js/package.json and package-lock.json (npm ci installs exactly those).
# Safe to run again: it does nothing when widgets/vendor/ already holds these versions. Needs node and npm.
set -euo pipefail
cd "$(dirname "$0")/.."

here=scripts/vendor_js
out=widgets/vendor
stamp="$out/.installed"
want=$(cat "$here/package.json" "$here/package-lock.json" | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
if ! command -v npm >/dev/null; then
  echo "[expression-lab] npm is missing: the live widget's browser backend needs it once, at install time." >&2
  echo "[expression-lab]     sudo apt-get install nodejs npm      (Debian/Ubuntu), then run $0 again" >&2
  exit 1
fi
echo "[expression-lab] installing the live widget's browser libraries from npm into $out …"
npm ci --prefix "$here" --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null
ort="$here/node_modules/onnxruntime-web"
opencv="$here/node_modules/@techstark/opencv-js"
rm -rf "$out.tmp"
mkdir -p "$out.tmp"
cp "$ort/dist/ort.wasm.min.mjs" "$ort/dist/ort-wasm-simd-threaded.mjs" "$ort/dist/ort-wasm-simd-threaded.wasm" "$out.tmp/"
cp "$opencv/dist/opencv.js" "$out.tmp/"
cp "$opencv/LICENSE" "$out.tmp/LICENSE.opencv-js"
node -e '
  const fs = require("fs");
  const info = (p) => { const j = JSON.parse(fs.readFileSync(p + "/package.json")); return { name: j.name, version: j.version, license: j.license }; };
  fs.writeFileSync(process.argv[3] + "/VENDORED.json", JSON.stringify([info(process.argv[1]), info(process.argv[2])], null, 2) + "\n");
' "$ort" "$opencv" "$out.tmp"
rm -rf "$out"
mv "$out.tmp" "$out"
echo "$want" > "$stamp"
echo "[expression-lab] browser libraries in $out: $(du -sh "$out" | cut -f1)"
