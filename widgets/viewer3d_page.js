// The standalone 3D face viewer (widgets/viewer3d.py, export_html): pick a subject and two expressions, colour
// by depth or by movement from neutral, switch camera presets. The page computes nothing about the faces: the
// clouds (float32 metres, 12 bytes a vertex) and both colourings (uint16 hundredths of a millimetre, computed
// in Python by the same function as the notebook widget) come inline from Python.

const bytes = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)).buffer;
const XYZ = new Float32Array(bytes(XYZ_B64));
const COLOURS = new Uint16Array(bytes(COLOUR_B64)); // per cloud: P depth values, then P movement values
const P = META.n_points;
const $ = (id) => document.getElementById(id);

function cloud(row) { return XYZ.subarray(row * P * 3, (row + 1) * P * 3); }
function rows() { return META.rows[$("subject").value]; }
function fill(sel, names, value) {
  sel.innerHTML = names.map((n) => `<option>${n}</option>`).join("");
  if (names.includes(value)) sel.value = value;
}
function colours(row, moved) {
  const start = row * 2 * P + (moved ? P : 0);
  return Array.from(COLOURS.subarray(start, start + P), (v) => v / 100);
}
// Both panels share one colour range and one colour bar, as in the notebook widget: equal colours, equal values.
function panel(name, scene, moved, values, top) {
  const c = cloud(rows()[name]), x = [], y = [], z = [];
  for (let i = 0; i < P; i++) { x.push(c[3 * i]); y.push(c[3 * i + 1]); z.push(c[3 * i + 2]); }
  return {
    type: "scatter3d", mode: "markers", x, y, z, scene, hoverinfo: "skip",
    marker: {
      size: +$("size").value, color: values, cmin: 0, cmax: top, showscale: scene === "scene2",
      colorscale: moved ? META.move_scale : META.depth_scale,
      colorbar: { title: moved ? "moved (mm)" : "depth (mm)", len: 0.6, thickness: 12 },
    },
  };
}
function draw() {
  const cam = META.cameras[$("camera").value], axis = { visible: false };
  const moved = $("colour").value !== "depth" && rows()["Neutral"] !== undefined;
  const scene = (d) => ({ domain: { x: d, y: [0, 1] }, camera: cam, aspectmode: "data", xaxis: axis, yaxis: axis, zaxis: axis });
  const names = [$("expression").value, $("compare").value];
  const values = names.map((n) => colours(rows()[n], moved));
  const top = Math.max(...values.map((v) => Math.max(...v))) || 1;
  Plotly.react("plot", [panel(names[0], "scene", moved, values[0], top), panel(names[1], "scene2", moved, values[1], top)], {
    title: `${$("subject").value}: ${names[0]} (left) · ${names[1]} (right)`,
    margin: { l: 0, r: 0, t: 40, b: 0 }, showlegend: false, scene: scene([0, 0.49]), scene2: scene([0.51, 1]),
  });
}
function pickSubject() {
  const names = Object.keys(rows());
  fill($("expression"), names, names.find((n) => n !== "Neutral") || names[0]);
  fill($("compare"), names, names.includes("Neutral") ? "Neutral" : names[0]);
  draw();
}
fill($("subject"), Object.keys(META.rows), Object.keys(META.rows)[0]);
$("subject").onchange = pickSubject;
for (const id of ["expression", "compare", "colour", "camera", "size"]) $(id).oninput = draw;
pickSubject();
