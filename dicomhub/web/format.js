// Pure helpers: DICOM values for display, and search-form values for /tools/find.

export function personName(value) {
  if (!value) return "";
  return value
    .split("=")[0]
    .split("^")
    .filter((part) => part.trim() !== "")
    .join(" ")
    .trim();
}

// "20240102" -> "2024-01-02"; anything else is shown as it is.
export function dicomDate(value) {
  if (!value) return "";
  const match = /^(\d{4})(\d{2})(\d{2})$/.exec(value.trim());
  return match ? `${match[1]}-${match[2]}-${match[3]}` : value;
}

// "2024-01-02" (an <input type=date> value) -> "20240102".
export function toDicomDate(value) {
  return value ? value.replaceAll("-", "") : "";
}

export function dateRange(from, to) {
  const a = toDicomDate(from);
  const b = toDicomDate(to);
  if (!a && !b) return "";
  if (a && b && a === b) return a;
  return `${a}-${b}`;
}

function hasWildcard(text) {
  return text.includes("*") || text.includes("?");
}

// Free text becomes a wildcard match: anywhere in names, as a prefix in identifiers
// (a fixed prefix keeps the index lookup fast).
export function containing(text) {
  const value = text.trim();
  if (!value) return "";
  return hasWildcard(value) ? value : `*${value}*`;
}

export function startingWith(text) {
  const value = text.trim();
  if (!value) return "";
  return hasWildcard(value) ? value : `${value}*`;
}

// The "Query" of /tools/find for the search form's values.
export function studyQuery({
  name = "",
  patientId = "",
  accession = "",
  description = "",
  from = "",
  to = "",
  modality = "",
}) {
  const query = {};
  const put = (key, value) => {
    if (value) query[key] = value;
  };
  put("PatientName", containing(name));
  put("PatientID", startingWith(patientId));
  put("AccessionNumber", startingWith(accession));
  put("StudyDescription", containing(description));
  put("StudyDate", dateRange(from, to));
  put("ModalitiesInStudy", modality.trim().toUpperCase());
  return query;
}

export function fileSize(bytes) {
  const value = Number(bytes);
  if (!Number.isFinite(value)) return "";
  const units = ["bytes", "KB", "MB", "GB", "TB"];
  let size = value;
  let unit = 0;
  while (size >= 1024 && unit < units.length - 1) {
    size /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} bytes` : `${size.toFixed(1)} ${units[unit]}`;
}

export function plural(count, word, many = `${word}s`) {
  return `${count} ${count === 1 ? word : many}`;
}

// Orthanc labels: letters, digits, "_" and "-", at most 64 characters.
export function isValidLabel(label) {
  return /^[A-Za-z0-9_-]{1,64}$/.test(label);
}

// The "Labels" of /tools/find for the search form's label field (one label, or none).
export function studyLabels({ label = "" }) {
  const value = label.trim();
  return value ? [value] : [];
}

// What a person may do with a job in a given state (the /jobs/{id}/{action} routes).
export function jobActions(state) {
  switch (state) {
    case "Pending":
    case "Running":
      return ["pause", "cancel"];
    case "Paused":
      return ["resume", "cancel"];
    case "Retry":
      return ["cancel"];
    case "Failure":
      return ["resubmit"];
    default:
      return [];
  }
}

// "20240102T101010" (Orthanc's timestamps) -> "2024-01-02 10:10:10".
export function timestamp(value) {
  const match = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})/.exec(value || "");
  return match ? `${match[1]}-${match[2]}-${match[3]} ${match[4]}:${match[5]}:${match[6]}` : value || "";
}
