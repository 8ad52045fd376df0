// Explorer: pick a set and a latent, move sliders, the edited image follows.
"use strict";

const state = { info: null, set: null, seed: 0, amounts: {}, selected: 0, upload: null };
const MAX_UPLOAD_BYTES = 8 * 1024 * 1024;  // web/uploads.py MAX_UPLOAD_BYTES: the server downscales the photo
const image = document.getElementById("image");
let inFlight = false, pending = false;

function currentSet() { return state.info.sets.find((s) => s.name === state.set); }

function shiftsParam() {
  return Object.entries(state.amounts).filter(([, s]) => s !== 0).map(([k, s]) => `${k}:${s}`).join(",");
}

function imageUrl() {
  const q = new URLSearchParams({ set: state.set, seed: state.seed, shifts: shiftsParam() });
  if (state.upload) { q.delete("seed"); q.set("id", state.upload.id); return `/api/upload/image?${q}`; }
  return `/api/image?${q}`;
}

// Send the file as a data URL in JSON; the server inverts it once and edits the latent it found.
async function uploadImage(file) {
  if (!["image/png", "image/jpeg"].includes(file.type)) throw new Error("choose a PNG or JPEG image");
  if (file.size > MAX_UPLOAD_BYTES) throw new Error(`the image is ${(file.size / 2 ** 20).toFixed(1)} MB; the limit is 8 MB`);
  const dataUrl = await new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
  document.getElementById("caption").textContent = "inverting your image…";
  const response = await fetch("/api/upload", { method: "POST", headers: { "Content-Type": "application/json" },
                                                body: JSON.stringify({ image: dataUrl }) });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error);
  state.upload = { ...body, name: file.name };
  document.getElementById("use-seed").hidden = false;
  refreshImage();
}

// At most one image request at a time; while it runs, only the latest slider position is kept.
async function refreshImage() {
  if (inFlight) { pending = true; return; }
  inFlight = true;
  const url = imageUrl();
  try {
    const response = await fetch(url);
    if (!response.ok) throw new Error((await response.json()).error);
    const blob = await response.blob();
    const old = image.src;
    image.src = URL.createObjectURL(blob);
    image.dataset.url = url;
    if (old.startsWith("blob:")) URL.revokeObjectURL(old);
    document.getElementById("download").href = `${url}&download=1&scale=4`;
    const moved = Object.entries(state.amounts).filter(([, s]) => s !== 0);
    const source = state.upload ? `${state.upload.name} (inverted, pixel MSE ${state.upload.pixel_mse})` : `seed ${state.seed}`;
    document.getElementById("caption").textContent = source +
      (moved.length ? " · " + moved.map(([k, s]) => `#${k} ${s > 0 ? "+" : ""}${s}`).join(", ") : " · original");
  } catch (error) { showError(error); }
  inFlight = false;
  if (pending) { pending = false; refreshImage(); }
}

function refreshChart() {
  const q = new URLSearchParams({ set: state.set, direction: state.selected, seeds: `${state.seed}-${state.seed + 3}` });
  const chart = document.getElementById("chart");
  chart.src = `/api/chart?${q}`;
  const set = currentSet();
  const name = set.names[state.selected];
  document.getElementById("chart-title").textContent = `Chart of direction #${state.selected}${name ? ` — ${name}` : ""}`;
  document.getElementById("chart-seeds").textContent = `${state.seed}–${state.seed + 3}`;
  document.querySelectorAll(".slider").forEach((row) =>
    row.classList.toggle("selected", Number(row.dataset.direction) === state.selected));
}

function buildSliders() {
  const set = currentSet(), box = document.getElementById("sliders"), max = Math.min(12, state.info.limits.max_shift);
  box.replaceChildren();
  state.amounts = {};
  for (let k = 0; k < set.num_directions; k++) {
    const score = set.scores ? ` score ${set.scores[k].toFixed(2)}` : "";
    const label = el("button", { type: "button", className: "name", title: "show this direction's chart" },
                     `#${k} ${set.names[k] || ""}`, el("span", { className: "muted" }, score));
    const slider = el("input", { type: "range", min: -max, max: max, step: 0.5, value: 0,
                                 ariaLabel: `shift along direction ${k}` });
    slider.dataset.direction = k;
    const value = el("output", {}, "0");
    const row = el("div", { className: "slider" }, label, slider, value);
    row.dataset.direction = k;
    label.addEventListener("click", () => { state.selected = k; refreshChart(); });
    slider.addEventListener("input", () => {
      const s = Number(slider.value);
      state.amounts[k] = s;
      value.textContent = s > 0 ? `+${s}` : `${s}`;
      row.classList.toggle("moved", s !== 0);
      if (state.selected !== k) { state.selected = k; refreshChart(); }
      refreshImage();
    });
    box.append(row);
  }
}

function selectSet(name) {
  state.set = name;
  state.selected = 0;
  buildSliders();
  refreshChart();
  refreshImage();
}

async function main() {
  state.info = await api("/api/sets");
  const select = document.getElementById("set");
  for (const s of state.info.sets) {
    select.append(el("option", { value: s.name, title: s.method }, `${s.name} · ${s.num_directions} dirs`));
  }
  select.addEventListener("change", () => selectSet(select.value));
  const seed = document.getElementById("seed");
  seed.max = state.info.limits.max_seed;
  seed.addEventListener("change", () => {
    const value = Math.max(0, Math.min(state.info.limits.max_seed, Math.floor(Number(seed.value) || 0)));
    seed.value = state.seed = value;
    refreshChart(); refreshImage();
  });
  document.getElementById("random-seed").addEventListener("click", () => {
    seed.value = Math.floor(Math.random() * 100000);
    seed.dispatchEvent(new Event("change"));
  });
  const upload = document.getElementById("upload");
  upload.addEventListener("change", () => { if (upload.files[0]) uploadImage(upload.files[0]).catch(showError); });
  document.getElementById("use-seed").addEventListener("click", (event) => {
    state.upload = null; upload.value = ""; event.target.hidden = true; refreshImage();
  });
  document.getElementById("reset").addEventListener("click", () => { buildSliders(); refreshChart(); refreshImage(); });
  selectSet(state.info.sets[0].name);
}

main().catch(showError);
