// The explorer: a study list backed by /tools/find, drill-down pages, operations
// pages and uploads. Navigation uses the URL hash (#/, #/studies/{id}, #/jobs, ...)
// so that links, the back button and reloads work without server-side routing.

import { apiUrl, get, post, put } from "./api.js";
import { clear, h, say } from "./dom.js";
import { dicomDate, fileSize, isValidLabel, personName, plural, studyLabels, studyQuery } from "./format.js";
import { showChanges, showJobs, showNetwork, showSystem } from "./operations.js";
import { showQuery } from "./query.js";
import { showInstance, showPatient, showSeries, showStudy } from "./resources.js";
import { $, clearMessage, confirmDialog, errorText, openPage, resetMessage, showError, showInfo } from "./ui.js";
import { setupUpload } from "./upload.js";

const PAGE_SIZE = 25;

// Each list load takes a ticket; an answer that arrives after a newer request
// was made is dropped, so a slow old search never overwrites a new one.
const state = {
  query: {},
  labels: [],
  page: 0,
  total: null,
  ticket: 0,
  sort: { key: "StudyDate", descending: true },
  // the studies ticked for a bulk action (id -> patient name), kept across pages
  selected: new Map(),
};

// ----- statistics -----

async function loadStatistics() {
  try {
    const stats = await get("statistics");
    $("stats").textContent =
      `${plural(stats.CountPatients, "patient")}, ${plural(stats.CountStudies, "study", "studies")}, ` +
      `${plural(stats.CountSeries, "series", "series")}, ${plural(stats.CountInstances, "instance")}, ` +
      `${fileSize(stats.TotalDiskSize)} on disk`;
  } catch (error) {
    $("stats").textContent = `Statistics unavailable: ${error.message}`;
  }
}

async function loadKnownLabels() {
  try {
    const labels = await get("tools/labels");
    clear($("known-labels"), labels.map((label) => h("option", { value: label })));
  } catch {
    // only a convenience for the label field: typing still works without it
  }
}

// ----- study list -----

function readForm() {
  const data = new FormData($("search"));
  return Object.fromEntries([...data.entries()].map(([key, value]) => [key, String(value)]));
}

function studyRow(study) {
  const tags = study.MainDicomTags || {};
  const patient = study.PatientMainDicomTags || {};
  const extra = study.RequestedTags || {};
  const open = (event) => {
    if (event.target.closest("a, input, .select")) return;
    location.hash = `#/studies/${study.ID}`;
  };
  const name = personName(patient.PatientName) || "(no name)";
  const tick = h("input", {
    type: "checkbox",
    "aria-label": `Select the study of ${name}${tags.StudyDate ? ` on ${dicomDate(tags.StudyDate)}` : ""}`,
    checked: state.selected.has(study.ID),
  });
  tick.addEventListener("change", () => {
    if (tick.checked) state.selected.set(study.ID, name);
    else state.selected.delete(study.ID);
    showSelection();
  });
  return h(
    "tr",
    { className: "clickable", onclick: open, "data-study": study.ID },
    h("td", { className: "select" }, tick),
    h("td", {}, h("a", { href: `#/studies/${study.ID}` }, name)),
    h("td", {}, patient.PatientID || ""),
    h("td", {}, dicomDate(tags.StudyDate)),
    h("td", {}, tags.StudyDescription || ""),
    h("td", {}, tags.AccessionNumber || ""),
    h("td", {}, (extra.ModalitiesInStudy || "").split("\\").filter(Boolean).join(", ")),
    h("td", { className: "num" }, (study.Series || []).length),
    h("td", { className: "num" }, extra.NumberOfStudyRelatedInstances ?? ""),
    h("td", { className: "num size", "data-size": study.ID }, ""),
  );
}

/** Sizes come after the rows are shown, one small request per study of the page. */
async function fillSizes(studies, ticket) {
  await Promise.all(
    studies.map(async (study) => {
      try {
        const stats = await get(`studies/${study.ID}/statistics`);
        if (ticket !== state.ticket) return;
        const cell = document.querySelector(`td[data-size="${study.ID}"]`);
        if (cell) cell.textContent = fileSize(Number(stats.DiskSize));
      } catch {
        // a study deleted meanwhile keeps an empty size cell; the row itself is shown
      }
    }),
  );
}

function showSortState() {
  for (const th of document.querySelectorAll("#study-table th[data-sort]")) {
    if (th.dataset.sort === state.sort.key) {
      th.setAttribute("aria-sort", state.sort.descending ? "descending" : "ascending");
    } else {
      th.removeAttribute("aria-sort");
    }
  }
}

async function loadStudies() {
  const ticket = ++state.ticket;
  const status = $("list-status");
  say(status, "Loading studies…");
  $("study-table").setAttribute("aria-busy", "true");
  $("prev").disabled = true;
  $("next").disabled = true;
  showSortState();
  try {
    const body = {
      Level: "Study",
      Query: state.query,
      Expand: true,
      RequestedTags: ["ModalitiesInStudy", "NumberOfStudyRelatedInstances"],
      Limit: PAGE_SIZE,
      Since: state.page * PAGE_SIZE,
      OrderBy: [{ Type: "DicomTag", Key: state.sort.key, Direction: state.sort.descending ? "DESC" : "ASC" }],
    };
    const counted = { Level: "Study", Query: state.query };
    if (state.labels.length) {
      body.Labels = state.labels;
      counted.Labels = state.labels;
    }
    // The total is counted when a search starts, not again for every page.
    const counting =
      state.page === 0 || state.total === null
        ? post("tools/count-resources", counted).catch(() => null)
        : Promise.resolve({ Count: state.total });
    const [studies, count] = await Promise.all([post("tools/find", body), counting]);
    if (ticket !== state.ticket) return;
    state.total = count && typeof count.Count === "number" ? count.Count : null;
    clear($("study-rows"), studies.map(studyRow));
    fillSizes(studies, ticket);
    showSelection();
    const first = state.page * PAGE_SIZE;
    if (studies.length === 0) {
      say(status, state.page > 0 ? "No more studies." : "No study matches this search.");
    } else if (state.total !== null) {
      say(status, `Studies ${first + 1} to ${first + studies.length} of ${state.total}.`);
    } else {
      say(status, `Studies ${first + 1} to ${first + studies.length}.`);
    }
    const pages = state.total !== null ? Math.max(1, Math.ceil(state.total / PAGE_SIZE)) : null;
    $("page-info").textContent = pages ? `Page ${state.page + 1} of ${pages}` : `Page ${state.page + 1}`;
    $("prev").disabled = state.page === 0;
    $("next").disabled =
      state.total !== null ? first + studies.length >= state.total : studies.length < PAGE_SIZE;
  } catch (error) {
    if (ticket !== state.ticket) return;
    clear($("study-rows"));
    say(status, "The studies could not be loaded.", "error");
    $("page-info").textContent = "";
    showError(error);
    $("prev").disabled = state.page === 0;
  } finally {
    if (ticket === state.ticket) $("study-table").removeAttribute("aria-busy");
  }
}

// ----- bulk actions on the ticked studies -----

function showSelection() {
  const ids = [...state.selected.keys()];
  $("bulk").hidden = ids.length === 0;
  $("bulk-count").textContent = `${plural(ids.length, "study", "studies")} selected`;
  $("bulk-zip").href = apiUrl(`tools/create-archive?resources=${ids.join(",")}`);
  const boxes = [...document.querySelectorAll("#study-rows .select input")];
  const ticked = boxes.filter((box) => box.checked).length;
  $("select-page").checked = boxes.length > 0 && ticked === boxes.length;
  $("select-page").indeterminate = ticked > 0 && ticked < boxes.length;
}

function clearSelection() {
  state.selected.clear();
  say($("bulk-status"), "");
  for (const box of document.querySelectorAll("#study-rows .select input")) box.checked = false;
  showSelection();
}

function setupBulk() {
  $("select-page").addEventListener("change", () => {
    const on = $("select-page").checked;
    for (const box of document.querySelectorAll("#study-rows .select input")) {
      if (box.checked !== on) {
        box.checked = on;
        box.dispatchEvent(new Event("change"));
      }
    }
    showSelection();
  });
  $("bulk-clear").addEventListener("click", clearSelection);
  $("bulk-label-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const label = $("bulk-label").value.trim();
    if (!isValidLabel(label)) {
      say($("bulk-status"), "A label uses only letters, digits, '_' and '-' (at most 64 characters).", "error");
      return;
    }
    const ids = [...state.selected.keys()];
    let failed = 0;
    for (const id of ids) {
      try {
        await put(`studies/${id}/labels/${encodeURIComponent(label)}`);
      } catch {
        failed += 1;
      }
    }
    say(
      $("bulk-status"),
      failed
        ? `Label ${label} added to ${ids.length - failed} studies; ${failed} could not be labelled (deleted meanwhile?).`
        : `Label ${label} added to ${plural(ids.length, "study", "studies")}.`,
      failed ? "error" : "info",
    );
    $("bulk-label").value = "";
    loadKnownLabels();
  });
  $("bulk-delete").addEventListener("click", async () => {
    const ids = [...state.selected.keys()];
    const ok = await confirmDialog(`Delete ${plural(ids.length, "study", "studies")} from the server? This cannot be undone.`);
    if (!ok) return;
    try {
      await post("tools/bulk-delete", { Resources: ids });
      clearSelection();
      say($("bulk-status"), "");
      state.total = null;
      showInfo(`${plural(ids.length, "study", "studies")} deleted.`);
      loadStudies();
      loadStatistics();
    } catch (error) {
      say($("bulk-status"), errorText(error), "error");
    }
  });
}

function setupSearch() {
  const form = $("search");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearMessage();
    const values = readForm();
    state.query = studyQuery(values);
    state.labels = studyLabels(values);
    clearSelection();
    state.page = 0;
    state.total = null;
    loadStudies();
  });
  form.addEventListener("reset", () => {
    clearMessage();
    state.query = {};
    state.labels = [];
    clearSelection();
    state.page = 0;
    state.total = null;
    setTimeout(loadStudies);
  });
  $("prev").addEventListener("click", () => {
    if (state.page > 0) {
      state.page -= 1;
      loadStudies();
    }
  });
  $("next").addEventListener("click", () => {
    state.page += 1;
    loadStudies();
  });
  for (const th of document.querySelectorAll("#study-table th[data-sort]")) {
    th.querySelector("button").addEventListener("click", () => {
      const key = th.dataset.sort;
      // a new column starts ascending (dates newest first); a second click reverses
      state.sort =
        state.sort.key === key
          ? { key, descending: !state.sort.descending }
          : { key, descending: key === "StudyDate" };
      state.page = 0;
      loadStudies();
    });
  }
}

// ----- navigation -----

const PAGES = [
  [/^#\/patients\/([0-9a-f-]+)$/, showPatient, "studies"],
  [/^#\/studies\/([0-9a-f-]+)$/, showStudy, "studies"],
  [/^#\/series\/([0-9a-f-]+)$/, showSeries, "studies"],
  [/^#\/instances\/([0-9a-f-]+)$/, showInstance, "studies"],
  [/^#\/jobs$/, showJobs, "jobs"],
  [/^#\/changes$/, showChanges, "changes"],
  [/^#\/network$/, showNetwork, "network"],
  [/^#\/query$/, showQuery, "query"],
  [/^#\/system$/, showSystem, "system"],
];

function markMenu(page) {
  for (const link of document.querySelectorAll(".menu a")) {
    if (link.dataset.page === page) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function showList() {
  openPage("Studies");
  $("page-view").hidden = true;
  $("studies-view").hidden = false;
  markMenu("studies");
  loadStudies();
  loadKnownLabels();
}

function route() {
  resetMessage();
  for (const [pattern, show, menu] of PAGES) {
    const match = pattern.exec(location.hash);
    if (match) {
      markMenu(menu);
      show(match[1]);
      return;
    }
  }
  if (location.hash && location.hash !== "#/" && location.hash !== "#") {
    openPage("Page not found", [["Studies", "#/"]]);
    clear($("page-body"), h("p", {}, "This address does not match any page of the explorer."));
    markMenu(null);
    return;
  }
  showList();
}

function start() {
  // The skip link moves the focus without touching the hash (the hash is the route).
  document.querySelector(".skip").addEventListener("click", (event) => {
    event.preventDefault();
    $("main").focus();
  });
  setupSearch();
  setupBulk();
  setupUpload({
    onDone: () => {
      loadStatistics();
      if (!$("studies-view").hidden) loadStudies();
    },
  });
  window.addEventListener("hashchange", route);
  loadStatistics();
  route();
}

start();
