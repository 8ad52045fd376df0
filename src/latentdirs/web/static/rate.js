// Rating session: one blind direction at a time, every answer saved as soon as it is given.
"use strict";

const session = { assessor: null, position: 0, total: 0, answered: [] };
const form = document.getElementById("answer-form");

function show(id) {
  for (const section of ["login", "session", "done"]) document.getElementById(section).hidden = section !== id;
}

function q(name) { return `assessor=${encodeURIComponent(session.assessor)}&${name}`; }

function setRadio(name, value) {
  for (const input of form.querySelectorAll(`input[name=${name}]`)) input.checked = input.value === value;
}

async function showItem(position) {
  const item = await api(`/api/rating/item?${q("position=" + position)}`);
  session.position = item.position;
  show("session");
  document.getElementById("rating-chart").src = item.chart;
  document.getElementById("progress-title").textContent = `Direction ${item.position + 1} of ${item.total}`;
  const progress = document.getElementById("progress");
  progress.max = item.total;
  progress.value = session.answered.filter(Boolean).length;
  const a = item.answer;
  setRadio("consistent", a ? (a.consistent ? "yes" : "no") : null);
  setRadio("single_factor", a ? (a.single_factor ? "yes" : "no") : null);
  setRadio("category", a ? (a.category || "") : null);
  document.getElementById("direction-name").value = a ? a.name : "";
  document.getElementById("saved").textContent = a ? "You answered this one already; saving replaces the answer." : "";
  document.getElementById("previous").disabled = item.position === 0;
  if (item.position + 1 < item.total) {  // warm the cache for the next chart
    new Image().src = `/api/rating/chart?${q("position=" + (item.position + 1))}`;
  }
}

function applyState(st) {
  session.total = st.total;
  session.answered = st.positions;
  document.getElementById("num-latents").textContent = st.seeds.length;
  document.getElementById("done-total").textContent = st.total;
}

// After answering position p: the next unanswered one after p, else any unanswered, else done.
function nextPosition(p) {
  const after = session.answered.findIndex((done, i) => i > p && !done);
  return after >= 0 ? after : session.answered.indexOf(false);
}

async function start(name) {
  session.assessor = name;
  const st = await api(`/api/rating/state?assessor=${encodeURIComponent(name)}`);
  session.assessor = st.assessor;
  localStorage.setItem("latentdirs-assessor", st.assessor);
  document.getElementById("who").textContent = `assessor: ${st.assessor} · ${st.answered} of ${st.total} answered`;
  applyState(st);
  if (st.next === null) show("done"); else await showItem(st.next);
}

document.getElementById("login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  start(document.getElementById("assessor").value).catch(showError);
});

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const data = new FormData(form);
  const answer = {
    assessor: session.assessor, position: session.position,
    consistent: data.get("consistent") === "yes", single_factor: data.get("single_factor") === "yes",
    category: data.get("category") || null, name: data.get("name") || "",
  };
  const button = document.getElementById("submit");
  button.disabled = true;
  try {
    const st = await postJson("/api/rating/answer", answer);
    applyState(st);
    document.getElementById("who").textContent = `assessor: ${st.assessor} · ${st.answered} of ${st.total} answered`;
    const next = nextPosition(session.position);
    if (next < 0) show("done"); else await showItem(next);
  } catch (error) { showError(error); }
  button.disabled = false;
});

document.getElementById("previous").addEventListener("click", () => {
  if (session.position > 0) showItem(session.position - 1).catch(showError);
});
document.getElementById("review").addEventListener("click", () => showItem(0).catch(showError));

const remembered = localStorage.getItem("latentdirs-assessor");
if (remembered) document.getElementById("assessor").value = remembered;
