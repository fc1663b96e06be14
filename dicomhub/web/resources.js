// The drill-down pages: patient, study, series and instance, with their actions
// (labels, downloads, send, protect, delete). Everything goes through the REST API.

import { apiUrl, del, get, post, put } from "./api.js";
import { clear, h, say } from "./dom.js";
import { dicomDate, isValidLabel, personName, plural } from "./format.js";
import { anonymizeBlock, modifyBlock } from "./modify.js";
import {
  $,
  action,
  confirmDialog,
  errorText,
  failPage,
  fillPage,
  isCurrent,
  openPage,
  panel,
  setTitle,
  noticeForNextPage,
  statusLine,
  tagList,
} from "./ui.js";

const LEVEL_NAMES = { patients: "patient", studies: "study", series: "series", instances: "instance" };
const JOB_POLL_MS = 1000;
const JOB_POLL_LIMIT = 600;

// ----- shared blocks -----

function labelsBlock(level, id, labels) {
  const status = statusLine();
  const list = h("ul", { className: "labels", "aria-label": "Labels" });
  let current = [...labels];
  const render = () => {
    clear(
      list,
      current.length === 0
        ? h("li", { className: "muted" }, "No label")
        : current.map((label) =>
            h(
              "li",
              { className: "label" },
              h("span", {}, label),
              action(
                "×",
                async () => {
                  await del(`${level}/${id}/labels/${encodeURIComponent(label)}`);
                  current = current.filter((item) => item !== label);
                  render();
                  say(status, `Label ${label} removed.`);
                },
                { className: "icon", status, title: `Remove label ${label}` },
              ),
            ),
          ),
    );
    for (const button of list.querySelectorAll("button")) {
      button.setAttribute("aria-label", button.title);
    }
  };
  render();
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
          await put(`${level}/${id}/labels/${encodeURIComponent(label)}`);
          current = await get(`${level}/${id}/labels`);
          render();
          input.value = "";
          say(status, `Label ${label} added.`);
        } catch (error) {
          say(status, errorText(error), "error");
        }
      },
    },
    h("label", { for: "new-label" }, "New label"),
    input,
    h("button", { type: "submit" }, "Add label"),
  );
  return panel("labels-title", "Labels", list, form, status);
}

// Follows an asynchronous job until it ends (bounded), reporting progress in `status`.
export async function followJob(jobId, status, what) {
  for (let round = 0; round < JOB_POLL_LIMIT; round += 1) {
    const job = await get(`jobs/${jobId}`);
    if (job.State === "Success") {
      say(status, `${what}: done.`);
      return job;
    }
    if (job.State === "Failure") {
      say(status, `${what} failed: ${job.ErrorDescription || "error"}${job.ErrorDetails ? ` (${job.ErrorDetails})` : ""}.`, "error");
      return job;
    }
    say(status, `${what}: ${job.State.toLowerCase()}, ${job.Progress ?? 0}%.`);
    await new Promise((resolve) => setTimeout(resolve, JOB_POLL_MS));
  }
  say(status, `${what} is still running; see the Jobs page.`);
  return null;
}

async function sendBlock(level, id) {
  const status = statusLine();
  let modalities = [];
  let peers = [];
  try {
    [modalities, peers] = await Promise.all([get("modalities"), get("peers")]);
  } catch (error) {
    return panel("send-title", "Send", h("p", { className: "muted" }, `Destinations unavailable: ${errorText(error)}`));
  }
  if (modalities.length === 0 && peers.length === 0) {
    return panel(
      "send-title",
      "Send",
      h("p", { className: "muted" }, "No DICOM modality or Orthanc peer is configured."),
    );
  }
  const select = h(
    "select",
    { id: "send-target", name: "target" },
    modalities.length ? h("optgroup", { label: "DICOM modalities" }, modalities.map((name) => h("option", { value: `modalities/${name}` }, name))) : null,
    peers.length ? h("optgroup", { label: "Orthanc peers" }, peers.map((name) => h("option", { value: `peers/${name}` }, name))) : null,
  );
  const button = h("button", { type: "submit" }, "Send");
  const form = h(
    "form",
    {
      className: "inline-form",
      onsubmit: async (event) => {
        event.preventDefault();
        const target = select.value;
        const name = select.selectedOptions[0]?.textContent || target;
        button.disabled = true;
        try {
          say(status, `Sending to ${name}…`);
          const job = await post(`${target}/store`, { Resources: [id], Asynchronous: true });
          await followJob(job.ID, status, `Sending to ${name}`);
        } catch (error) {
          say(status, errorText(error), "error");
        } finally {
          button.disabled = false;
        }
      },
    },
    h("label", { for: "send-target" }, `Send this ${LEVEL_NAMES[level]} to`),
    select,
    button,
  );
  return panel("send-title", "Send", form, status);
}

function deleteButton(level, id, text, after) {
  return action(
    `Delete ${LEVEL_NAMES[level]}`,
    async () => {
      if (!(await confirmDialog(text))) return;
      await del(`${level}/${id}`);
      noticeForNextPage(`The ${LEVEL_NAMES[level]} was deleted.`);
      after();
    },
    { className: "danger" },
  );
}

function downloads(level, id) {
  const links = [
    h("a", { className: "button", href: apiUrl(`${level}/${id}/archive`), download: `${id}.zip` }, "Download ZIP"),
  ];
  if (level !== "instances") {
    links.push(
      h("a", { className: "button secondary", href: apiUrl(`${level}/${id}/media`), download: `${id}-dicomdir.zip` }, "Download DICOMDIR"),
    );
  } else {
    links.splice(0, 1, h("a", { className: "button", href: apiUrl(`instances/${id}/file`), download: `${id}.dcm` }, "Download DICOM file"));
  }
  return links;
}

function preview(instanceId, alt, frame = null) {
  const path = frame === null ? `instances/${instanceId}/preview` : `instances/${instanceId}/frames/${frame}/preview`;
  const image = h("img", { src: apiUrl(path), alt, width: 160, height: 160, className: "preview" });
  image.addEventListener("error", () => {
    image.replaceWith(h("div", { className: "no-preview", role: "img", "aria-label": alt }, "No preview available"));
  });
  return image;
}

// A large preview with a slider: over the frames of one instance, or over the
// instances of a series (`sources` are functions from a position to an image path).
function viewer(title, count, pathAt, describe) {
  const image = h("img", { className: "viewer-image", src: apiUrl(pathAt(0)), alt: `${title}: ${describe(0)}` });
  const note = h("p", { className: "muted", "aria-hidden": "true" }, describe(0));
  image.addEventListener("error", () => {
    note.textContent = `${describe(Number(slider?.value ?? 0))}: no preview available for this image.`;
  });
  let slider = null;
  const children = [image, note];
  if (count > 1) {
    slider = h("input", {
      id: "frame-slider",
      type: "range",
      min: 0,
      max: count - 1,
      value: 0,
      step: 1,
      "aria-valuetext": describe(0),
    });
    slider.addEventListener("input", () => {
      const at = Number(slider.value);
      image.src = apiUrl(pathAt(at));
      image.alt = `${title}: ${describe(at)}`;
      note.textContent = describe(at);
      slider.setAttribute("aria-valuetext", describe(at));
    });
    children.push(h("label", { for: "frame-slider" }, "Image"), slider);
  }
  return panel("viewer-title", "Preview", h("div", { className: "viewer" }, ...children));
}

// ----- the full tag tree of an instance (/instances/{id}/tags) -----

function tagValue(entry) {
  if (entry.Type === "Sequence") return null;
  if (entry.Type === "Null") return "";
  if (entry.Type === "TooLong") return "(too long to show)";
  if (entry.Type === "Binary") return "(binary)";
  return String(entry.Value ?? "");
}

function tagNodes(tags) {
  return Object.entries(tags).map(([tag, entry]) => {
    if (entry.Type === "Sequence") {
      const items = entry.Value || [];
      return h(
        "li",
        { "data-tag": tag },
        h(
          "details",
          {},
          h("summary", {}, h("code", {}, tag), ` ${entry.Name || ""} `, h("span", { className: "muted" }, `(${plural(items.length, "item")})`)),
          h(
            "ol",
            { className: "tag-items" },
            items.map((item, index) => h("li", {}, h("span", { className: "muted" }, `Item ${index + 1}`), h("ul", { className: "tag-tree" }, tagNodes(item)))),
          ),
        ),
      );
    }
    return h(
      "li",
      { "data-tag": tag },
      h("code", {}, tag),
      " ",
      h("span", { className: "tag-name" }, entry.Name || "(private or unknown)"),
      ": ",
      h("span", { className: "tag-value" }, tagValue(entry)),
    );
  });
}

function tagTree(tags) {
  const tree = h("ul", { className: "tag-tree", id: "tag-tree" }, tagNodes(tags));
  const filter = h("input", { id: "tag-filter", type: "search", autocomplete: "off" });
  filter.addEventListener("input", () => {
    const wanted = filter.value.trim().toLowerCase();
    for (const item of tree.children) {
      item.hidden = wanted !== "" && !item.textContent.toLowerCase().includes(wanted);
    }
  });
  return panel(
    "tag-tree-title",
    "All tags",
    h("div", { className: "inline-form" }, h("label", { for: "tag-filter" }, "Filter tags"), filter),
    tree,
  );
}

function attachmentsBlock(id, names) {
  return panel(
    "attachments-title",
    "Attachments",
    h(
      "ul",
      { className: "link-list" },
      names.map((name) =>
        h("li", {}, h("a", { href: apiUrl(`instances/${id}/attachments/${encodeURIComponent(name)}/data`), download: `${id}-${name}` }, name)),
      ),
    ),
  );
}

function metadataBlock(metadata) {
  return panel("metadata-title", "Metadata", tagList(Object.entries(metadata).sort(([a], [b]) => a.localeCompare(b))));
}

// ----- pages -----

function patientCrumbs(patientId, patientLabel) {
  return [
    ["Studies", "#/"],
    [patientLabel, patientId ? `#/patients/${patientId}` : null],
  ];
}

function patientTags(tags) {
  return tagList([
    ["Name", personName(tags.PatientName)],
    ["ID", tags.PatientID],
    ["Birth date", dicomDate(tags.PatientBirthDate)],
    ["Sex", tags.PatientSex],
  ]);
}

export async function showPatient(id) {
  const token = openPage("Patient", [["Studies", "#/"], ["Patient", null]]);
  try {
    const [patient, studies, isProtected] = await Promise.all([
      get(`patients/${id}`),
      get(`patients/${id}/studies`),
      get(`patients/${id}/protected`),
    ]);
    const tags = patient.MainDicomTags || {};
    const name = personName(tags.PatientName) || "(no name)";
    const protection = statusLine();
    let protectedNow = String(isProtected).trim() === "1";
    const toggle = action(protectedNow ? "Unprotect" : "Protect", async (button) => {
      await put(`patients/${id}/protected`, protectedNow ? "0" : "1");
      protectedNow = String(await get(`patients/${id}/protected`)).trim() === "1";
      button.textContent = protectedNow ? "Unprotect" : "Protect";
      say(
        protection,
        protectedNow
          ? "This patient is protected: automatic recycling will not delete it."
          : "This patient is not protected: it may be recycled when the storage is full.",
      );
    }, { status: protection });
    say(
      protection,
      protectedNow
        ? "This patient is protected: automatic recycling will not delete it."
        : "This patient is not protected: it may be recycled when the storage is full.",
    );
    studies.sort((a, b) => (b.MainDicomTags?.StudyDate || "").localeCompare(a.MainDicomTags?.StudyDate || ""));
    if (!isCurrent(token)) return;
    setTitle(`Patient ${name}`);
    fillPage(
      token,
      h("div", { className: "actions" }, ...downloads("patients", id), deleteButton("patients", id, `Delete patient ${name} and ${plural(studies.length, "study", "studies")}? This cannot be undone.`, () => (location.hash = "#/"))),
      h(
        "div",
        { className: "study-info" },
        panel("patient-title", "Patient", patientTags(tags)),
        panel("protect-title", "Protection", h("div", { className: "actions" }, toggle), protection),
      ),
      panel(
        "patient-studies-title",
        plural(studies.length, "study", "studies"),
        h(
          "ul",
          { className: "link-list" },
          studies.map((study) =>
            h(
              "li",
              {},
              h("a", { href: `#/studies/${study.ID}` }, study.MainDicomTags?.StudyDescription || "(no description)"),
              ` — ${dicomDate(study.MainDicomTags?.StudyDate)} · ${plural((study.Series || []).length, "series", "series")}`,
            ),
          ),
        ),
      ),
    );
  } catch (error) {
    failPage(token, "Patient not available", error);
  }
}

function seriesCard(series) {
  const tags = series.MainDicomTags || {};
  const first = (series.Instances || [])[0];
  const title = [tags.Modality, tags.SeriesDescription].filter(Boolean).join(" · ") || "Series";
  const alt = `Preview of series ${tags.SeriesNumber || ""} ${title}`.replace(/\s+/g, " ");
  return h(
    "li",
    { className: "series" },
    first ? preview(first, alt) : h("div", { className: "no-preview" }, "No image"),
    h(
      "div",
      {},
      h("h4", {}, h("a", { href: `#/series/${series.ID}` }, title)),
      tagList([
        ["Number", tags.SeriesNumber],
        ["Date", dicomDate(tags.SeriesDate)],
        ["Body part", tags.BodyPartExamined],
        ["Instances", String((series.Instances || []).length)],
      ]),
    ),
  );
}

export async function showStudy(id) {
  const token = openPage("Study", [["Studies", "#/"], ["Study", null]]);
  try {
    const [study, series, labels] = await Promise.all([
      get(`studies/${id}`),
      get(`studies/${id}/series`),
      get(`studies/${id}/labels`),
    ]);
    const send = await sendBlock("studies", id);
    const tags = study.MainDicomTags || {};
    const patient = study.PatientMainDicomTags || {};
    const name = personName(patient.PatientName) || "(no name)";
    if (!isCurrent(token)) return;
    setTitle(`${name} — ${tags.StudyDescription || "Study"}`);
    openCrumbs([...patientCrumbs(study.ParentPatient, name), [tags.StudyDescription || "Study", null]]);
    series.sort((a, b) => Number(a.MainDicomTags?.SeriesNumber ?? 0) - Number(b.MainDicomTags?.SeriesNumber ?? 0));
    fillPage(
      token,
      h(
        "div",
        { className: "actions" },
        ...downloads("studies", id),
        deleteButton(
          "studies",
          id,
          `Delete this study (${plural(series.length, "series", "series")}) from the server? This cannot be undone.`,
          () => (location.hash = "#/"),
        ),
      ),
      h(
        "div",
        { className: "study-info" },
        panel("patient-title", "Patient", patientTags(patient), h("p", {}, h("a", { href: `#/patients/${study.ParentPatient}` }, "Open the patient"))),
        panel(
          "study-tags-title",
          "Study",
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
        labelsBlock("studies", id, labels),
        send,
      ),
      h(
        "section",
        { "aria-labelledby": "series-title" },
        h("h3", { id: "series-title" }, plural(series.length, "series", "series")),
        h("ul", { className: "series-list" }, series.map(seriesCard)),
      ),
      h("div", { className: "study-info" }, anonymizeBlock("studies", id), modifyBlock("studies", id, { ...patient, ...tags })),
    );
    $("page-title").focus();
  } catch (error) {
    failPage(token, "Study not available", error);
  }
}

function openCrumbs(crumbs) {
  const nav = $("crumbs");
  clear(
    nav,
    h(
      "ol",
      {},
      crumbs.map(([text, href]) => h("li", {}, href ? h("a", { href }, text) : h("span", { "aria-current": "page" }, text))),
    ),
  );
}

export async function showSeries(id) {
  const token = openPage("Series", [["Studies", "#/"], ["Series", null]]);
  try {
    const [series, instances, labels] = await Promise.all([
      get(`series/${id}`),
      get(`series/${id}/instances`),
      get(`series/${id}/labels`),
    ]);
    const study = await get(`studies/${series.ParentStudy}`);
    const send = await sendBlock("series", id);
    const tags = series.MainDicomTags || {};
    const patientName = personName(study.PatientMainDicomTags?.PatientName) || "(no name)";
    const title = [tags.Modality, tags.SeriesDescription].filter(Boolean).join(" · ") || "Series";
    instances.sort((a, b) => Number(a.MainDicomTags?.InstanceNumber ?? 0) - Number(b.MainDicomTags?.InstanceNumber ?? 0));
    if (!isCurrent(token)) return;
    setTitle(`Series ${title}`);
    openCrumbs([
      ...patientCrumbs(study.ParentPatient, patientName),
      [study.MainDicomTags?.StudyDescription || "Study", `#/studies/${series.ParentStudy}`],
      [title, null],
    ]);
    const describe = (at) => `instance ${at + 1} of ${instances.length}`;
    fillPage(
      token,
      h(
        "div",
        { className: "actions" },
        ...downloads("series", id),
        deleteButton("series", id, `Delete this series (${plural(instances.length, "instance")})? This cannot be undone.`, () => (location.hash = `#/studies/${series.ParentStudy}`)),
      ),
      h(
        "div",
        { className: "study-info" },
        instances.length
          ? viewer(title, instances.length, (at) => `instances/${instances[at].ID}/preview`, describe)
          : panel("viewer-title", "Preview", h("p", { className: "muted" }, "No image")),
        panel(
          "series-tags-title",
          "Series",
          tagList([
            ["Modality", tags.Modality],
            ["Description", tags.SeriesDescription],
            ["Number", tags.SeriesNumber],
            ["Date", dicomDate(tags.SeriesDate)],
            ["Body part", tags.BodyPartExamined],
            ["Protocol", tags.ProtocolName],
            ["Station", tags.StationName],
            ["Series UID", tags.SeriesInstanceUID],
          ]),
        ),
        labelsBlock("series", id, labels),
        send,
      ),
      panel(
        "instances-title",
        plural(instances.length, "instance"),
        h(
          "ol",
          { className: "link-list instances" },
          instances.map((instance) =>
            h("li", {}, h("a", { href: `#/instances/${instance.ID}` }, `Instance ${instance.MainDicomTags?.InstanceNumber || instance.IndexInSeries || ""}`.trim())),
          ),
        ),
      ),
      h(
        "div",
        { className: "study-info" },
        anonymizeBlock("series", id),
        modifyBlock("series", id, { ...(study.PatientMainDicomTags || {}), ...tags }),
      ),
    );
  } catch (error) {
    failPage(token, "Series not available", error);
  }
}

export async function showInstance(id) {
  const token = openPage("Instance", [["Studies", "#/"], ["Instance", null]]);
  try {
    const [instance, tags, metadata, labels, attachments] = await Promise.all([
      get(`instances/${id}`),
      get(`instances/${id}/tags`),
      get(`instances/${id}/metadata?expand`),
      get(`instances/${id}/labels`),
      get(`instances/${id}/attachments`),
    ]);
    const series = await get(`series/${instance.ParentSeries}`);
    const main = instance.MainDicomTags || {};
    const frames = Math.max(1, Number(main.NumberOfFrames || 1) || 1);
    const number = main.InstanceNumber || instance.IndexInSeries || "";
    if (!isCurrent(token)) return;
    setTitle(`Instance ${number}`.trim());
    const seriesTitle = [series.MainDicomTags?.Modality, series.MainDicomTags?.SeriesDescription].filter(Boolean).join(" · ") || "Series";
    openCrumbs([
      ["Studies", "#/"],
      ["Study", `#/studies/${series.ParentStudy}`],
      [seriesTitle, `#/series/${instance.ParentSeries}`],
      [`Instance ${number}`.trim(), null],
    ]);
    const describe = (at) => `frame ${at + 1} of ${frames}`;
    fillPage(
      token,
      h(
        "div",
        { className: "actions" },
        ...downloads("instances", id),
        deleteButton("instances", id, "Delete this instance? This cannot be undone.", () => (location.hash = `#/series/${instance.ParentSeries}`)),
      ),
      h(
        "div",
        { className: "study-info" },
        viewer(`Instance ${number}`, frames, (at) => (frames > 1 ? `instances/${id}/frames/${at}/preview` : `instances/${id}/preview`), describe),
        panel(
          "instance-tags-title",
          "Instance",
          tagList([
            ["Number", main.InstanceNumber],
            ["Frames", String(frames)],
            ["SOP instance UID", main.SOPInstanceUID],
            ["Size", instance.FileSize ? `${instance.FileSize} bytes` : ""],
          ]),
        ),
        labelsBlock("instances", id, labels),
        metadataBlock(metadata),
        attachmentsBlock(id, attachments),
      ),
      tagTree(tags),
    );
  } catch (error) {
    failPage(token, "Instance not available", error);
  }
}
