// The AU explorer's standalone page (widgets/au_explorer.py, export_html): sliders per Action Unit sum the AU
// shapes onto the neutral face in the browser and redraw the points coloured by millimetres moved.
// FACE (names, presets, camera), BLOB (neutral + shapes, float32) and MOVE_SCALE are defined by the page.
(function () {
  const bytes = Uint8Array.from(atob(BLOB), (c) => c.charCodeAt(0));
  const all = new Float32Array(bytes.buffer);
  const n = FACE.n_points * 3;
  const neutral = all.subarray(0, n);
  const shapes = FACE.aus.map((_, k) => all.subarray(n * (k + 1), n * (k + 2)));
  const values = FACE.aus.map(() => 0);
  const sliders = document.getElementById("sliders");
  const inputs = FACE.aus.map((name, k) => {
    const label = document.createElement("label");
    const input = document.createElement("input");
    const shown = document.createElement("span");
    Object.assign(input, { type: "range", min: 0, max: FACE.max, step: 1, value: 0 });
    input.addEventListener("input", () => { values[k] = Number(input.value); draw(); });
    label.append(`${name} `, input, shown);
    sliders.append(label);
    return { input, shown };
  });
  const presets = document.getElementById("presets");
  for (const [name, aus] of Object.entries({ Neutral: {}, ...FACE.presets })) {
    const button = document.createElement("button");
    button.textContent = name;
    button.addEventListener("click", () => {
      FACE.aus.forEach((au, k) => { values[k] = aus[au] || 0; inputs[k].input.value = values[k]; });
      draw();
    });
    presets.append(button);
  }
  function draw() {
    const x = [], y = [], z = [], moved = [];
    for (let p = 0; p < FACE.n_points; p++) {
      let dx = 0, dy = 0, dz = 0;
      for (let k = 0; k < shapes.length; k++) {
        if (!values[k]) continue;
        const w = values[k] / FACE.max;
        dx += w * shapes[k][3 * p]; dy += w * shapes[k][3 * p + 1]; dz += w * shapes[k][3 * p + 2];
      }
      x.push(neutral[3 * p] + dx); y.push(neutral[3 * p + 1] + dy); z.push(neutral[3 * p + 2] + dz);
      moved.push(1000 * Math.hypot(dx, dy, dz));
    }
    inputs.forEach(({ shown }, k) => { shown.textContent = " " + "·ABCDE"[values[k]]; });
    const top = Math.max(1, ...moved);
    Plotly.react("face", [{ type: "scatter3d", mode: "markers", x, y, z, hoverinfo: "skip",
      marker: { size: 3, color: moved, colorscale: MOVE_SCALE, cmin: 0, cmax: top,
        colorbar: { title: "moved (mm)", len: 0.6, thickness: 12 } } }],
      { margin: { l: 0, r: 0, t: 0, b: 0 }, uirevision: "face",
        scene: { camera: FACE.camera, aspectmode: "data", xaxis: { visible: false }, yaxis: { visible: false },
          zaxis: { visible: false } } });
  }
  draw();
})();
