// The operations pages: jobs (live), changes feed, system and statistics,
// DICOM modalities and Orthanc peers (with echo buttons).

import { get, post } from "./api.js";
import { clear, h, say } from "./dom.js";
import { fileSize, jobActions, plural, timestamp } from "./format.js";
import { errorText, fillPage, isCurrent, openPage, panel, statusLine, tagList } from "./ui.js";

const JOBS_REFRESH_MS = 1500;
const JOBS_RETRY_MS = 5000;
const CHANGES_PAGE = 50;

const ACTION_LABELS = { pause: "Pause", resume: "Resume", cancel: "Cancel", resubmit: "Resubmit" };

// ----- jobs -----

function jobRow(job, status, refresh) {
  const row = h("tr", { "data-job": job.ID });
  row.update = (current) => {
    const stateCell = h("td", { className: "job-state", "data-state": current.State }, current.State);
    const progress = h("progress", { max: 100, value: Number(current.Progress) || 0, "aria-label": `Progress of job ${current.ID}` });
    const actions = jobActions(current.State).map((name) =>
      h(
        "button",
        {
          type: "button",
          className: name === "cancel" ? "secondary" : "",
          "aria-label": `${ACTION_LABELS[name]} job ${current.ID}`,
          onclick: async (event) => {
            event.currentTarget.disabled = true;
            try {
              await post(`jobs/${current.ID}/${name}`, {});
              say(status, `Job ${current.ID.slice(0, 8)}: ${ACTION_LABELS[name].toLowerCase()} requested.`);
            } catch (error) {
              say(status, errorText(error), "error");
            }
            refresh();
          },
        },
        ACTION_LABELS[name],
      ),
    );
    const error =
      current.State === "Failure" ? `${current.ErrorDescription || ""}${current.ErrorDetails ? ` — ${current.ErrorDetails}` : ""}` : "";
    clear(
      row,
      h("td", {}, h("code", { title: current.ID }, current.ID.slice(0, 8))),
      h("td", {}, current.Type),
      stateCell,
      h("td", {}, progress, ` ${Number(current.Progress) || 0}%`),
      h("td", {}, timestamp(current.CreationTime)),
      h("td", {}, error),
      h("td", { className: "row-actions" }, actions),
    );
    row.state = current.State;
    row.progress = current.Progress;
  };
  row.update(job);
  return row;
}

export async function showJobs() {
  const token = openPage("Jobs");
  const status = statusLine();
  const live = h("p", { className: "muted", id: "jobs-live", role: "status", "aria-live": "polite" });
  const body = h("tbody", { id: "job-rows" });
  const table = h(
    "div",
    { className: "table-wrap" },
    h(
      "table",
      { className: "studies jobs" },
      h("caption", { className: "visually-hidden" }, "Jobs, newest first"),
      h(
        "thead",
        {},
        h("tr", {}, ["Job", "Type", "State", "Progress", "Created", "Error", "Actions"].map((name) => h("th", { scope: "col" }, name))),
      ),
      body,
    ),
  );
  const rows = new Map();
  let timer = null;
  const refresh = async () => {
    clearTimeout(timer);
    if (!isCurrent(token)) return;
    let delay = JOBS_REFRESH_MS;
    try {
      const jobs = await get("jobs?expand");
      if (!isCurrent(token)) return;
      jobs.sort((a, b) => (b.CreationTime || "").localeCompare(a.CreationTime || ""));
      const seen = new Set();
      const ordered = jobs.map((job) => {
        seen.add(job.ID);
        let row = rows.get(job.ID);
        if (!row) {
          row = jobRow(job, status, refresh);
          rows.set(job.ID, row);
        } else if (row.state !== job.State || row.progress !== job.Progress) {
          row.update(job);
        }
        return row;
      });
      for (const id of [...rows.keys()]) if (!seen.has(id)) rows.delete(id);
      if (ordered.length === 0) {
        clear(body, h("tr", {}, h("td", { colspan: 7, className: "muted" }, "No job.")));
      } else if ([...body.children].some((row, index) => row !== ordered[index]) || body.children.length !== ordered.length) {
        clear(body, ordered);
      }
      say(live, `${plural(jobs.length, "job")}; updated ${new Date().toLocaleTimeString()}.`);
    } catch (error) {
      delay = JOBS_RETRY_MS;
      say(live, `${errorText(error)} The list will be retried in a few seconds.`, "error");
    }
    if (isCurrent(token)) timer = setTimeout(refresh, delay);
  };
  fillPage(token, status, live, table);
  await refresh();
}

// ----- changes -----

function changeRow(change) {
  const path = change.Path || "";
  const match = /^\/(patients|studies|series|instances)\/([0-9a-f-]+)$/.exec(path);
  return h(
    "tr",
    {},
    h("td", { className: "num" }, change.Seq),
    h("td", {}, timestamp(change.Date)),
    h("td", {}, change.ChangeType),
    h("td", {}, change.ResourceType),
    h("td", {}, match ? h("a", { href: `#/${match[1]}/${match[2]}` }, change.ID) : h("code", {}, change.ID)),
  );
}

export async function showChanges() {
  const token = openPage("Changes");
  try {
    const last = await get("changes?last");
    const body = h("tbody", { id: "change-rows" });
    const status = h("p", { className: "muted", role: "status", "aria-live": "polite" });
    let oldest = Number(last.Last) + 1;
    const more = h("button", { type: "button", className: "secondary" }, "Older changes");
    const loadOlder = async () => {
      more.disabled = true;
      try {
        const since = Math.max(0, oldest - 1 - CHANGES_PAGE);
        const page = await get(`changes?since=${since}&limit=${CHANGES_PAGE}`);
        const changes = (page.Changes || []).filter((change) => change.Seq < oldest).reverse();
        body.append(...changes.map(changeRow));
        if (changes.length) oldest = changes[changes.length - 1].Seq;
        const finished = since === 0 || changes.length === 0;
        more.hidden = finished;
        say(status, body.children.length === 0 ? "No change recorded." : `${plural(body.children.length, "change")} shown, newest first.`);
      } catch (error) {
        say(status, errorText(error), "error");
      } finally {
        more.disabled = false;
      }
    };
    more.addEventListener("click", loadOlder);
    fillPage(
      token,
      status,
      h(
        "div",
        { className: "table-wrap" },
        h(
          "table",
          { className: "studies" },
          h("caption", { className: "visually-hidden" }, "Changes, newest first"),
          h("thead", {}, h("tr", {}, ["Seq", "Date", "Change", "Level", "Resource"].map((name) => h("th", { scope: "col" }, name)))),
          body,
        ),
      ),
      h("div", { className: "pager" }, more),
    );
    await loadOlder();
  } catch (error) {
    if (!isCurrent(token)) return;
    fillPage(token, h("p", { className: "message", "data-kind": "error", role: "alert" }, errorText(error)));
  }
}

// ----- system and statistics -----

export async function showSystem() {
  const token = openPage("System");
  try {
    const [system, stats] = await Promise.all([get("system"), get("statistics")]);
    fillPage(
      token,
      h(
        "div",
        { className: "study-info" },
        panel(
          "statistics-title",
          "Statistics",
          tagList([
            ["Patients", String(stats.CountPatients)],
            ["Studies", String(stats.CountStudies)],
            ["Series", String(stats.CountSeries)],
            ["Instances", String(stats.CountInstances)],
            ["Storage used", fileSize(stats.TotalDiskSize)],
            ["Uncompressed size", fileSize(stats.TotalUncompressedSize)],
          ]),
        ),
        panel(
          "system-title",
          "Server",
          tagList([
            ["Name", system.Name],
            ["Orthanc API version", system.Version],
            ["REST API level", String(system.ApiVersion ?? "")],
            ["DICOM AET", system.DicomAet],
            ["DICOM port", String(system.DicomPort ?? "")],
            ["HTTP port", String(system.HttpPort ?? "")],
            ["Database version", String(system.DatabaseVersion ?? "")],
            ["Storage area", system.StorageAreaPlugin || "built-in"],
            ["Database", system.DatabaseBackendPlugin || "built-in"],
            ["Overwrite instances", String(system.OverwriteInstances ?? "")],
          ]),
        ),
      ),
    );
  } catch (error) {
    if (!isCurrent(token)) return;
    fillPage(token, h("p", { className: "message", "data-kind": "error", role: "alert" }, errorText(error)));
  }
}

// ----- modalities and peers -----

function echoButton(label, run, status) {
  const button = h("button", { type: "button", "aria-label": label }, label.split(" ")[0]);
  button.addEventListener("click", async () => {
    button.disabled = true;
    say(status, "Testing…");
    try {
      say(status, await run(), "ok");
    } catch (error) {
      say(status, errorText(error), "error");
    } finally {
      button.disabled = false;
    }
  });
  return button;
}

function remoteTable(id, caption, columns, rows) {
  if (rows.length === 0) return h("p", { className: "muted" }, `No ${caption.toLowerCase()} configured.`);
  return h(
    "div",
    { className: "table-wrap" },
    h(
      "table",
      { className: "studies", id },
      h("caption", { className: "visually-hidden" }, caption),
      h("thead", {}, h("tr", {}, columns.map((name) => h("th", { scope: "col" }, name)))),
      h("tbody", {}, rows),
    ),
  );
}

export async function showNetwork() {
  const token = openPage("Modalities and peers");
  try {
    const [modalities, peers] = await Promise.all([get("modalities?expand"), get("peers?expand")]);
    const modalityRows = Object.entries(modalities).map(([name, info]) => {
      const status = h("span", { className: "inline-status", role: "status", "aria-live": "polite" });
      return h(
        "tr",
        { "data-modality": name },
        h("td", {}, name),
        h("td", {}, info.AET),
        h("td", {}, `${info.Host}:${info.Port}`),
        h("td", {}, info.Manufacturer || ""),
        h(
          "td",
          { className: "row-actions" },
          echoButton(`Echo ${name}`, async () => {
            await post(`modalities/${encodeURIComponent(name)}/echo`, {});
            return `${name} answered the DICOM echo.`;
          }, status),
          status,
        ),
      );
    });
    const peerRows = Object.entries(peers).map(([name, info]) => {
      const status = h("span", { className: "inline-status", role: "status", "aria-live": "polite" });
      return h(
        "tr",
        { "data-peer": name },
        h("td", {}, name),
        h("td", {}, info.Url),
        h("td", {}, info.Username || ""),
        h(
          "td",
          { className: "row-actions" },
          echoButton(`Test ${name}`, async () => {
            const system = await get(`peers/${encodeURIComponent(name)}/system`);
            return `${name} answered: ${system.Name || "Orthanc"} ${system.Version || ""}.`.replace(" .", ".");
          }, status),
          status,
        ),
      );
    });
    fillPage(
      token,
      panel(
        "modalities-title",
        "DICOM modalities",
        remoteTable("modality-table", "DICOM modalities", ["Name", "AET", "Address", "Manufacturer", "Echo"], modalityRows),
      ),
      panel(
        "peers-title",
        "Orthanc peers",
        remoteTable("peer-table", "Orthanc peers", ["Name", "URL", "User", "Test"], peerRows),
      ),
    );
  } catch (error) {
    if (!isCurrent(token)) return;
    fillPage(token, h("p", { className: "message", "data-kind": "error", role: "alert" }, errorText(error)));
  }
}
