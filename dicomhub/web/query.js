// Query / retrieve against a configured DICOM modality: a C-FIND at the study
// level (/modalities/{id}/query), its answers (/queries/{id}/answers), and a
// C-MOVE of one or all answers to this server, followed as a job.

import { get, post } from "./api.js";
import { clear, h, say } from "./dom.js";
import { dicomDate, personName, plural, studyQuery } from "./format.js";
import { followJob } from "./resources.js";
import { errorText, fillPage, isCurrent, openPage, panel, statusLine } from "./ui.js";

// Keys asked back from the remote modality (universal matching when empty).
const RETURNED = [
  "PatientName",
  "PatientID",
  "StudyDate",
  "StudyDescription",
  "AccessionNumber",
  "ModalitiesInStudy",
  "StudyInstanceUID",
];

function field(id, label, attributes = {}) {
  return h(
    "div",
    { className: "field" },
    h("label", { for: id }, label),
    h("input", { id, name: attributes.name, type: attributes.type || "search", autocomplete: "off" }),
  );
}

async function localStudy(studyUid) {
  const found = await post("tools/find", { Level: "Study", Query: { StudyInstanceUID: studyUid } });
  return found[0] || null;
}

function answerRow(queryId, answer, index, status) {
  const retrieveStatus = h("span", { className: "inline-status", role: "status", "aria-live": "polite" });
  const button = h("button", { type: "button", "aria-label": `Retrieve study ${index + 1}` }, "Retrieve");
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      say(retrieveStatus, "Retrieving…");
      const job = await post(`queries/${queryId}/answers/${index}/retrieve`, { Asynchronous: true });
      const done = await followJob(job.ID, retrieveStatus, "Retrieve");
      if (done && done.State === "Success" && answer.StudyInstanceUID) {
        const study = await localStudy(answer.StudyInstanceUID);
        if (study) {
          clear(retrieveStatus, "Retrieved: ", h("a", { href: `#/studies/${study}` }, "open the study"));
        }
      }
    } catch (error) {
      say(retrieveStatus, errorText(error), "error");
      say(status, "");
    } finally {
      button.disabled = false;
    }
  });
  return h(
    "tr",
    { "data-answer": index },
    h("td", {}, personName(answer.PatientName)),
    h("td", {}, answer.PatientID || ""),
    h("td", {}, dicomDate(answer.StudyDate)),
    h("td", {}, answer.StudyDescription || ""),
    h("td", {}, answer.AccessionNumber || ""),
    h("td", {}, (answer.ModalitiesInStudy || "").split("\\").filter(Boolean).join(", ")),
    h("td", { className: "row-actions" }, button, retrieveStatus),
  );
}

export async function showQuery() {
  const token = openPage("Query and retrieve");
  let modalities;
  try {
    modalities = await get("modalities");
  } catch (error) {
    if (isCurrent(token)) fillPage(token, h("p", { className: "message", "data-kind": "error", role: "alert" }, errorText(error)));
    return;
  }
  if (modalities.length === 0) {
    fillPage(token, h("p", {}, "No DICOM modality is configured, so there is nothing to query."));
    return;
  }
  const status = statusLine();
  const results = h("div", { id: "query-results" });
  const select = h("select", { id: "qr-modality", name: "target" }, modalities.map((name) => h("option", { value: name }, name)));
  const form = h(
    "form",
    { className: "search", role: "search", "aria-label": "Query a modality" },
    h("div", { className: "field" }, h("label", { for: "qr-modality" }, "Remote modality"), select),
    field("qr-name", "Patient name", { name: "name" }),
    field("qr-id", "Patient ID", { name: "patientId" }),
    field("qr-accession", "Accession number", { name: "accession" }),
    field("qr-from", "Study date from", { name: "from", type: "date" }),
    field("qr-to", "Study date to", { name: "to", type: "date" }),
    field("qr-modalities", "Modality in study", { name: "modality" }),
    h("div", { className: "actions" }, h("button", { type: "submit" }, "Query")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const values = Object.fromEntries([...new FormData(form).entries()].map(([k, v]) => [k, String(v)]));
    const query = Object.fromEntries(RETURNED.map((key) => [key, ""]));
    Object.assign(query, studyQuery(values));
    const submit = form.querySelector("button[type=submit]");
    submit.disabled = true;
    clear(results);
    say(status, `Querying ${select.value}…`);
    try {
      const started = await post(`modalities/${encodeURIComponent(select.value)}/query`, { Level: "Study", Query: query });
      const answers = await get(`queries/${started.ID}/answers?expand&simplify`);
      if (!isCurrent(token)) return;
      say(status, answers.length ? `${select.value} found ${plural(answers.length, "study", "studies")}.` : `${select.value} found no study.`);
      if (answers.length === 0) return;
      const retrieveAll = h("button", { type: "button", className: "secondary" }, "Retrieve all");
      const allStatus = statusLine();
      retrieveAll.addEventListener("click", async () => {
        retrieveAll.disabled = true;
        try {
          const job = await post(`queries/${started.ID}/retrieve`, { Asynchronous: true });
          await followJob(job.ID, allStatus, "Retrieve all");
        } catch (error) {
          say(allStatus, errorText(error), "error");
        } finally {
          retrieveAll.disabled = false;
        }
      });
      clear(
        results,
        h(
          "div",
          { className: "table-wrap" },
          h(
            "table",
            { className: "studies", id: "answer-table" },
            h("caption", { className: "visually-hidden" }, `Studies found on ${select.value}`),
            h(
              "thead",
              {},
              h("tr", {}, ["Patient", "Patient ID", "Date", "Description", "Accession", "Modalities", "Retrieve"].map((name) => h("th", { scope: "col" }, name))),
            ),
            h("tbody", {}, answers.map((answer, index) => answerRow(started.ID, answer, index, status))),
          ),
        ),
        h("div", { className: "actions pager" }, retrieveAll, allStatus),
      );
    } catch (error) {
      say(status, errorText(error), "error");
    } finally {
      submit.disabled = false;
    }
  });
  fillPage(token, panel("qr-title", "Find studies on a remote modality", form, status), results);
}
