"""One Prometheus scrape from the scrapes of several HTTP workers.

Each worker counts the requests it answered (``core.metrics``); a scrape must
describe the server, as a single process would. The scrapes are merged line by line:

- Orthanc's bare lines (``name value timestamp``): the requests in flight add up,
  the longest recent request is the longest of all; the others describe the archive
  (read from the shared index), so every worker gives the same value and the first
  one is kept;
- the Prometheus families: counters, histogram buckets, sums and counts add up
  (for the same labels), ``*_created`` keeps the earliest time; comments are kept
  once, and each family stays one group.
"""

from __future__ import annotations

_SUMMED = {"orthanc_rest_api_active_requests"}
_MAXIMUM = {"orthanc_rest_api_duration_ms"}


def _number(text: str) -> float:
    return float(text)


def _format(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


def merge_scrapes(scrapes: list[str]) -> str:
    bare: dict[str, list[str]] = {}  # name -> [value, timestamp]
    families: dict[str, tuple[list[str], dict[str, float]]] = {}
    for scrape in scrapes:
        family = ""
        for line in scrape.splitlines():
            if not line:
                continue
            if line.startswith("#"):
                parts = line.split(maxsplit=3)
                family = parts[2] if len(parts) > 2 else family
                comments, _ = families.setdefault(family, ([], {}))
                if line not in comments:
                    comments.append(line)
                continue
            key, _, rest = line.rpartition("}") if "}" in line else ("", "", line)
            if key:  # name{labels} value
                sample, value = key + "}", rest.split()[0]
            else:
                fields = line.split()
                if len(fields) == 3 and not family:  # Orthanc's name value timestamp
                    name, value, stamp = fields
                    if name not in bare:
                        bare[name] = [value, stamp]
                    elif name in _SUMMED:
                        bare[name][0] = _format(_number(bare[name][0]) + _number(value))
                    elif name in _MAXIMUM:
                        bare[name][0] = _format(max(_number(bare[name][0]), _number(value)))
                    continue
                sample, value = fields[0], fields[1]
            _, samples = families.setdefault(family, ([], {}))
            number = _number(value)
            if sample not in samples:
                samples[sample] = number
            elif sample.split("{")[0].endswith("_created"):
                samples[sample] = min(samples[sample], number)
            else:
                samples[sample] += number
    lines = [f"{name} {value} {stamp}" for name, (value, stamp) in bare.items()]
    for comments, samples in families.values():
        lines += comments
        lines += [f"{sample} {value!r}" for sample, value in samples.items()]
    return "\n".join(lines) + "\n"


__all__ = ["merge_scrapes"]
