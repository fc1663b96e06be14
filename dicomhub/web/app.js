// The explorer: a study list backed by /tools/find, a study page, and uploads.
// Navigation uses the URL hash (#/ and #/studies/{id}) so that links, the back
// button and reloads work without any server-side routing.

import { ApiError, apiUrl, del, get, post, put } from "./api.js";
import { clear, h, say } from "./dom.js";
import { dicomDate, fileSize, isValidLabel, personName, plural, studyQuery } from "./format.js";
import { setupUpload } from "./upload.js";

const PAGE_SIZE = 25;
const $ = (id) => document.getElementById(id);

// Each list load takes a ticket; an answer that arrives after a newer request
// was made is dropped, so a slow old search never overwrites a new one.
const state = { query: {}, page: 0, total: null, ticket: 0 };

function showError(error) {
  const text = error instanceof ApiError ? error.message : `Something went wrong: ${error.message}`;
  say($("message"), text, "error");
}

function clearError() {
  say($("message"), "");
}

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

// ----- study list -----

function readForm() {
  const data = new FormData($("search"));
  return Object.fromEntries([...data.entries()].map(([key, value]) => [key, String(value)]));
}

function studyRow(study) {
  const tags = study.MainDicomTags || {};
  const patient = study.PatientMainDicomTags || {};
  const extra = study.RequestedTags || {};
  const open = () => {
    location.hash = `#/studies/${study.ID}`;
  };
  const name = personName(patient.PatientName) || "(no name)";
  return h(
    "tr",
    { className: "clickable", onclick: open },
    h("td", {}, h("a", { href: `#/studies/${study.ID}` }, name)),
    h("td", {}, patient.PatientID || ""),
    h("td", {}, dicomDate(tags.StudyDate)),
    h("td", {}, tags.StudyDescription || ""),
    h("td", {}, tags.AccessionNumber || ""),
    h("td", {}, (extra.ModalitiesInStudy || "").split("\\").filter(Boolean).join(", ")),
    h("td", { className: "num" }, (study.Series || []).length),
    h("td", { className: "num" }, extra.NumberOfStudyRelatedInstances ?? ""),
  );
}

async function loadStudies() {
  const ticket = ++state.ticket;
  const status = $("list-status");
  say(status, "Loading studies…");
  $("study-table").setAttribute("aria-busy", "true");
  $("prev").disabled = true;
  $("next").disabled = true;
  try {
    const body = {
      Level: "Study",
      Query: state.query,
      Expand: true,
      RequestedTags: ["ModalitiesInStudy", "NumberOfStudyRelatedInstances"],
      Limit: PAGE_SIZE,
      Since: state.page * PAGE_SIZE,
      OrderBy: [{ Type: "DicomTag", Key: "StudyDate", Direction: "DESC" }],
    };
    // The total is counted when a search starts, not again for every page.
    const counting =
      state.page === 0 || state.total === null
        ? post("tools/count-resources", { Level: "Study", Query: state.query }).catch(() => null)
        : Promise.resolve({ Count: state.total });
    const [studies, count] = await Promise.all([post("tools/find", body), counting]);
    if (ticket !== state.ticket) return;
    state.total = count && typeof count.Count === "number" ? count.Count : null;
    const rows = studies.map(studyRow);
    clear($("study-rows"), rows);
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
    showError(error);
    $("prev").disabled = state.page === 0;
  } finally {
    if (ticket === state.ticket) $("study-table").removeAttribute("aria-busy");
  }
}

function setupSearch() {
  const form = $("search");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearError();
    state.query = studyQuery(readForm());
    state.page = 0;
    loadStudies();
  });
  form.addEventListener("reset", () => {
    clearError();
    state.query = {};
    state.page = 0;
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
}

// ----- study page -----

function confirmDialog(text) {
  const dialog = $("confirm");
  $("confirm-text").textContent = text;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.returnValue = "";
    dialog.showModal();
  });
}

function tagList(entries) {
  return h(
    "dl",
    { className: "tags" },
    entries.filter(([, value]) => value).flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]),
  );
}

function seriesCard(series) {
  const tags = series.MainDicomTags || {};
  const first = (series.Instances || [])[0];
  const title = [tags.Modality, tags.SeriesDescription].filter(Boolean).join(" · ") || "Series";
  let preview;
  if (first) {
    const image = h("img", {
      src: apiUrl(`instances/${first}/preview`),
      alt: `Preview of the first image of series ${tags.SeriesNumber || ""} ${title}`.replace(/\s+/g, " "),
      loading: "lazy",
      width: 160,
      height: 160,
    });
    image.addEventListener("error", () => {
      image.replaceWith(h("div", { className: "no-preview" }, "No preview available"));
    });
    preview = image;
  } else {
    preview = h("div", { className: "no-preview" }, "No image");
  }
  return h(
    "li",
    { className: "series" },
    preview,
    h(
      "div",
      {},
      h("h4", {}, title),
      tagList([
        ["Number", tags.SeriesNumber],
        ["Date", dicomDate(tags.SeriesDate)],
        ["Body part", tags.BodyPartExamined],
        ["Instances", String((series.Instances || []).length)],
      ]),
    ),
  );
}

function labelsBlock(studyId, labels) {
  const status = h("p", { className: "inline-status", role: "status", "aria-live": "polite" });
  const list = h("ul", { className: "labels", "aria-label": "Labels" });
  const render = (current) => {
    clear(
      list,
      current.length === 0
        ? h("li", { className: "muted" }, "No label")
        : current.map((label) =>
            h(
              "li",
              { className: "label" },
              h("span", {}, label),
              h(
                "button",
                {
                  type: "button",
                  className: "icon",
                  "aria-label": `Remove label ${label}`,
                  title: `Remove label ${label}`,
                  onclick: async () => {
                    try {
                      await del(`studies/${studyId}/labels/${encodeURIComponent(label)}`);
                      current = current.filter((item) => item !== label);
                      render(current);
                      say(status, `Label ${label} removed.`);
                    } catch (error) {
                      say(status, error.message, "error");
                    }
                  },
                },
                "×",
              ),
            ),
          ),
    );
  };
  render([...labels]);
  const input = h("input", { id: "new-label", name: "label", required: true, maxlength: 64, autocomplete: "off" });
  const form = h(
    "form",
    {
      className: "add-label",
      onsubmit: async (event) => {
        event.preventDefault();
        const label = input.value.trim();
        if (!isValidLabel(label)) {
          say(status, "A label uses only letters, digits, '_' and '-' (at most 64 characters).", "error");
          input.focus();
          return;
        }
        try {
          await put(`studies/${studyId}/labels/${encodeURIComponent(label)}`);
          const current = await get(`studies/${studyId}/labels`);
          render(current);
          input.value = "";
          say(status, `Label ${label} added.`);
        } catch (error) {
          say(status, error.message, "error");
        }
      },
    },
    h("label", { for: "new-label" }, "New label"),
    input,
    h("button", { type: "submit" }, "Add label"),
  );
  return h("section", { "aria-labelledby": "labels-title" }, h("h3", { id: "labels-title" }, "Labels"), list, form, status);
}

async function showStudy(id) {
  $("studies-view").hidden = true;
  $("study-view").hidden = false;
  const body = $("study-body");
  const title = $("study-title");
  title.textContent = "Study";
  clear(body, h("p", { role: "status" }, "Loading the study…"));
  try {
    const [study, series, labels] = await Promise.all([
      get(`studies/${id}`),
      get(`studies/${id}/series`),
      get(`studies/${id}/labels`),
    ]);
    const tags = study.MainDicomTags || {};
    const patient = study.PatientMainDicomTags || {};
    title.textContent = `${personName(patient.PatientName) || "(no name)"} — ${tags.StudyDescription || "Study"}`;
    const actions = h(
      "div",
      { className: "actions" },
      h("a", { className: "button", href: apiUrl(`studies/${id}/archive`), download: `${id}.zip` }, "Download ZIP"),
      h(
        "button",
        {
          type: "button",
          className: "danger",
          onclick: async () => {
            const ok = await confirmDialog(
              `Delete this study (${plural(series.length, "series", "series")}) from the server? This cannot be undone.`,
            );
            if (!ok) return;
            try {
              await del(`studies/${id}`);
              say($("message"), "The study was deleted.", "info");
              location.hash = "#/";
              loadStatistics();
            } catch (error) {
              showError(error);
            }
          },
        },
        "Delete study",
      ),
    );
    series.sort((a, b) => Number(a.MainDicomTags?.SeriesNumber ?? 0) - Number(b.MainDicomTags?.SeriesNumber ?? 0));
    clear(
      body,
      actions,
      h(
        "div",
        { className: "study-info" },
        h(
          "section",
          { "aria-labelledby": "patient-title" },
          h("h3", { id: "patient-title" }, "Patient"),
          tagList([
            ["Name", personName(patient.PatientName)],
            ["ID", patient.PatientID],
            ["Birth date", dicomDate(patient.PatientBirthDate)],
            ["Sex", patient.PatientSex],
          ]),
        ),
        h(
          "section",
          { "aria-labelledby": "study-tags-title" },
          h("h3", { id: "study-tags-title" }, "Study"),
          tagList([
            ["Date", dicomDate(tags.StudyDate)],
            ["Description", tags.StudyDescription],
            ["Accession", tags.AccessionNumber],
            ["Study ID", tags.StudyID],
            ["Referring physician", personName(tags.ReferringPhysicianName)],
            ["Institution", tags.InstitutionName],
            ["Study UID", tags.StudyInstanceUID],
          ]),
        ),
        labelsBlock(id, labels),
      ),
      h(
        "section",
        { "aria-labelledby": "series-title" },
        h("h3", { id: "series-title" }, plural(series.length, "series", "series")),
        h("ul", { className: "series-list" }, series.map(seriesCard)),
      ),
    );
    title.focus();
  } catch (error) {
    title.textContent = "Study not available";
    clear(body, h("p", { className: "message", "data-kind": "error" }, error.message));
  }
}

function showList() {
  $("study-view").hidden = true;
  $("studies-view").hidden = false;
  loadStudies();
}

function route() {
  const match = /^#\/studies\/([0-9a-f-]+)$/.exec(location.hash);
  if (match) {
    clearError();
    showStudy(match[1]);
  } else {
    showList();
  }
}

function start() {
  setupSearch();
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
