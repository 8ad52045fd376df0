// Results: MOS per set, category shares, per assessor, consensus names.
"use strict";

function table(id, header, rows) {
  const t = document.getElementById(id);
  t.replaceChildren(el("thead", {}, el("tr", {}, ...header.map((h) => el("th", {}, h)))),
                    el("tbody", {}, ...rows.map((r) => el("tr", {}, ...r.map((c) => el("td", {}, c))))));
}

async function load() {
  const r = await api("/api/results");
  document.getElementById("answer-count").textContent = `${r.answers} answers in ${r.database}.`;
  table("mos-table", ["set", "MOS", "consistent (q1)", "single factor (q2)", "assessors", "directions", "answers"],
        r.sets.map((s) => [s.set, fmt(s.mos), fmt(s.consistent), fmt(s.single_factor), s.assessors, s.directions, s.answers]));
  table("category-table", ["set", ...r.categories],
        r.sets.map((s) => [s.set, ...r.categories.map((c) => fmt(s[c]))]));
  const sets = r.sets.map((s) => s.set);
  table("assessor-table", ["assessor", ...sets],
        Object.entries(r.per_assessor).map(([who, per]) => [who, ...sets.map((s) => fmt(per[s]))]));
  const rows = [];
  for (const [set, names] of Object.entries(r.names)) {
    for (const [k, name] of Object.entries(names)) {
      const current = (r.current_names[set] || [])[Number(k)] || "";
      rows.push([set, `#${k}`, name, current === name ? "saved" : (current ? `now: ${current}` : "not saved")]);
    }
  }
  if (!rows.length) rows.push(["no names given yet", "", "", ""]);
  table("names-table", ["set", "direction", "most common name", "in the set"], rows);
}

document.getElementById("apply-names").addEventListener("click", async () => {
  try {
    const r = await postJson("/api/apply-names", {});
    const count = Object.values(r.written).reduce((n, names) => n + Object.keys(names).length, 0);
    document.getElementById("applied").textContent = count ? `Wrote ${count} name(s).` : "Nothing new to write.";
    await load();
  } catch (error) { showError(error); }
});

load().catch(showError);
