// Anonymize and modify forms for a study or a series (/{level}/{id}/anonymize and
// /modify). Both keep the original unless asked, and answer the new resource,
// which the form links to.

import { post } from "./api.js";
import { clear, h, say } from "./dom.js";
import { plural } from "./format.js";
import { errorText, panel, statusLine } from "./ui.js";

const LONG_REQUEST_MS = 10 * 60 * 1000;
const NAMES = { studies: "study", series: "series" };

function textField(prefix, key, label, value = "") {
  const id = `${prefix}-${key}`;
  const input = h("input", { id, name: key, autocomplete: "off", value });
  return [input, h("div", { className: "field" }, h("label", { for: id }, label), input)];
}

function checkbox(prefix, key, label, checked) {
  const id = `${prefix}-${key}`;
  const input = h("input", { id, name: key, type: "checkbox", checked });
  return [input, h("div", { className: "check" }, input, h("label", { for: id }, label))];
}

function done(status, level, answer, verb, keepSource) {
  const link = h("a", { href: `#/${level}/${answer.ID}` }, `open the new ${NAMES[level]}`);
  const count = Number.isFinite(answer.InstancesCount) ? `${plural(answer.InstancesCount, "instance")} written; ` : "";
  clear(status, `${verb}: ${count}`, link, ".");
  status.dataset.kind = "ok";
  if (!keepSource) location.hash = `#/${level}/${answer.ID}`;
}

async function submit(form, status, busyText, run) {
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  say(status, busyText);
  try {
    await run();
  } catch (error) {
    say(status, errorText(error), "error");
  } finally {
    button.disabled = false;
  }
}

// `current`: the main tags shown pre-filled in the modify form.
export function modifyBlock(level, id, current) {
  const status = statusLine();
  const fields = [
    ["PatientName", "Patient name"],
    ["PatientID", "Patient ID"],
    ...(level === "studies"
      ? [
          ["StudyDescription", "Study description"],
          ["AccessionNumber", "Accession number"],
        ]
      : [["SeriesDescription", "Series description"]]),
  ].map(([key, label]) => [key, ...textField("modify", key, label, current[key] || "")]);
  const [keepSource, keepSourceField] = checkbox("modify", "keep", "Keep the original", true);
  const [removePrivate, removePrivateField] = checkbox("modify", "private", "Remove private tags", false);
  const form = h(
    "form",
    { className: "option-form", "aria-label": `Modify this ${NAMES[level]}` },
    h("div", { className: "fields" }, fields.map(([, , field]) => field)),
    keepSourceField,
    removePrivateField,
    h("p", { className: "muted" }, "Changing the patient ID moves the copy to another patient."),
    h("div", { className: "actions" }, h("button", { type: "submit" }, "Modify")),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const replace = {};
    for (const [key, input] of fields) {
      if (input.value.trim() !== (current[key] || "")) replace[key] = input.value.trim();
    }
    if (Object.keys(replace).length === 0 && !removePrivate.checked) {
      say(status, "Nothing to change: edit a field or tick an option first.", "error");
      return;
    }
    submit(form, status, "Modifying…", async () => {
      const body = { Replace: replace, KeepSource: keepSource.checked };
      if (removePrivate.checked) body.RemovePrivateTags = true;
      if ("PatientID" in replace) body.Force = true;
      const answer = await post(`${level}/${id}/modify`, body, { timeout: LONG_REQUEST_MS });
      done(status, level, answer, "Modified", keepSource.checked);
    });
  });
  return panel("modify-title", "Modify", form, status);
}

export function anonymizeBlock(level, id) {
  const status = statusLine();
  const [name, nameField] = textField("anon", "PatientName", "New patient name (optional)");
  const [patientId, patientIdField] = textField("anon", "PatientID", "New patient ID (optional)");
  const [keepDescriptions, keepDescriptionsField] = checkbox("anon", "descriptions", "Keep study and series descriptions", false);
  const [keepPrivate, keepPrivateField] = checkbox("anon", "private", "Keep private tags", false);
  const [keepSource, keepSourceField] = checkbox("anon", "keep", "Keep the original", true);
  const form = h(
    "form",
    { className: "option-form", "aria-label": `Anonymize this ${NAMES[level]}` },
    h("div", { className: "fields" }, nameField, patientIdField),
    keepDescriptionsField,
    keepPrivateField,
    keepSourceField,
    h("div", { className: "actions" }, h("button", { type: "submit" }, "Anonymize")),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit(form, status, "Anonymizing…", async () => {
      const body = { KeepSource: keepSource.checked };
      const replace = {};
      if (name.value.trim()) replace.PatientName = name.value.trim();
      if (patientId.value.trim()) {
        replace.PatientID = patientId.value.trim();
        body.Force = true;
      }
      if (Object.keys(replace).length) body.Replace = replace;
      if (keepDescriptions.checked) body.Keep = ["StudyDescription", "SeriesDescription"];
      if (keepPrivate.checked) body.KeepPrivateTags = true;
      const answer = await post(`${level}/${id}/anonymize`, body, { timeout: LONG_REQUEST_MS });
      done(status, level, answer, "Anonymized", keepSource.checked);
    });
  });
  return panel("anonymize-title", "Anonymize", form, status);
}
