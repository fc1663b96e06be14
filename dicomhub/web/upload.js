// Upload by drag and drop or file picker: each file (DICOM or ZIP) is POSTed to
// /instances, a few at a time, with a progress bar and a plain-words error per file.

import { post } from "./api.js";
import { clear, h } from "./dom.js";

const PARALLEL = 3;
const UPLOAD_TIMEOUT_MS = 10 * 60 * 1000;

// Folders dropped from the desktop arrive as entries to walk.
async function filesOfEntry(entry, prefix = "") {
  if (entry.isFile) {
    const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
    return [{ file, name: prefix + file.name }];
  }
  if (!entry.isDirectory) return [];
  const reader = entry.createReader();
  const children = [];
  for (;;) {
    const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
    if (batch.length === 0) break;
    children.push(...batch);
  }
  const nested = await Promise.all(children.map((child) => filesOfEntry(child, `${prefix}${entry.name}/`)));
  return nested.flat();
}

async function filesOfDrop(dataTransfer) {
  const entries = [...(dataTransfer.items || [])]
    .map((item) => (item.webkitGetAsEntry ? item.webkitGetAsEntry() : null))
    .filter(Boolean);
  if (entries.length === 0) {
    return [...dataTransfer.files].map((file) => ({ file, name: file.name }));
  }
  return (await Promise.all(entries.map((entry) => filesOfEntry(entry)))).flat();
}

function explain(error) {
  if (error.status === 400) return "not a DICOM file (or a damaged one), so it was not stored.";
  return error.message;
}

export function setupUpload({ onDone }) {
  const drop = document.getElementById("drop");
  const input = document.getElementById("files");
  const folder = document.getElementById("folder");
  const progress = document.getElementById("upload-progress");
  const status = document.getElementById("upload-status");
  const errors = document.getElementById("upload-errors");
  let busy = false;

  async function send(items) {
    if (items.length === 0) return;
    if (busy) {
      status.textContent = "An upload is already running; wait for it to finish.";
      return;
    }
    busy = true;
    clear(errors);
    let done = 0;
    let failed = 0;
    progress.hidden = false;
    progress.max = items.length;
    progress.value = 0;
    const report = () => {
      status.textContent = `${done} of ${items.length} files sent${failed ? `, ${failed} failed` : ""}.`;
      progress.value = done;
    };
    report();
    const queue = [...items];
    const worker = async () => {
      while (queue.length > 0) {
        const { file, name } = queue.shift();
        try {
          await post("instances", file, { timeout: UPLOAD_TIMEOUT_MS });
        } catch (error) {
          failed += 1;
          errors.append(h("li", {}, `${name}: ${explain(error)}`));
        }
        done += 1;
        report();
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(PARALLEL, items.length) }, worker));
      status.textContent =
        failed === 0
          ? `Upload finished: ${items.length} file${items.length === 1 ? "" : "s"} stored.`
          : `Upload finished: ${items.length - failed} stored, ${failed} refused (see below).`;
    } finally {
      busy = false;
      input.value = "";
      folder.value = "";
      onDone();
    }
  }

  input.addEventListener("change", () => send([...input.files].map((file) => ({ file, name: file.name }))));
  folder.addEventListener("change", () =>
    send([...folder.files].map((file) => ({ file, name: file.webkitRelativePath || file.name }))),
  );
  for (const name of ["dragenter", "dragover"]) {
    drop.addEventListener(name, (event) => {
      event.preventDefault();
      drop.classList.add("over");
    });
  }
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", async (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    try {
      send(await filesOfDrop(event.dataTransfer));
    } catch (error) {
      status.textContent = `The dropped files could not be read: ${error.message}`;
    }
  });
}
