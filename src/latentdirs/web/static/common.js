// Shared by the pages: JSON calls that turn {"error": ...} answers into exceptions.
"use strict";

async function api(url, options) {
  const response = await fetch(url, options);
  const isJson = (response.headers.get("Content-Type") || "").includes("json");
  const body = isJson ? await response.json() : null;
  if (!response.ok) throw new Error(body && body.error ? body.error : `${response.status} ${response.statusText}`);
  return body;
}

function postJson(url, data) {
  return api(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(data) });
}

function showError(error) {
  const box = document.getElementById("error");
  if (!box) return;
  box.textContent = error ? String(error.message || error) : "";
  box.hidden = !error;
  if (error) setTimeout(() => { box.hidden = true; }, 6000);
}

// Create an element with properties and children (text children are text nodes, never HTML).
function el(tag, props, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props || {});
  for (const child of children) node.append(child instanceof Node ? child : String(child));
  return node;
}

function fmt(x, digits = 3) { return typeof x === "number" ? x.toFixed(digits) : "–"; }

api("/api/sets").then((info) => {
  const g = info.generator;
  document.getElementById("generator").textContent =
    `${g.name} · latent ${g.latent_dim} · ${g.image_shape[1]}×${g.image_shape[2]} px · ${info.sets.length} set(s)`;
}).catch(showError);
