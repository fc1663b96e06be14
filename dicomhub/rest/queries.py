"""Query/retrieve over REST: ``/modalities/{id}/query`` and ``/queries``, the older
``find-*`` routes, and ``/modalities/{id}/move`` and ``/get``.

Shapes follow Orthanc (checked against 1.10.1, and 1.12's job contents): a query
answers ``{"ID", "Path"}``; answers and the original query render in the full
format unless ``?simplify`` or ``?short``; a retrieve is a ``DicomMoveScu`` or
``DicomGetScu`` job, run inside the request unless ``"Asynchronous": true`` (or
``"Synchronous": false``), and the synchronous answer is the job's content.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..core import queries as q
from ..core.describe import TagStyle
from ..core.errors import BadFileFormat, UnknownResource
from ..core.job_requests import priority, wants_job
from ..core.jobs import engine as jobs_engine
from ..core.jobs import types as job_types
from ..core.jobs.engine import JobContext
from ..core.modalities import RemoteModality, retrieve_method
from ..dicom.levels import Level
from ..dicom.main_tags import format_tag
from ..dicom.tag_names import parse_tag
from ..dicom.tags_json import simplified_tags
from ..dicom.values import ENCODING_TERMS, dataset_charsets
from ..net import find_filters, query_scu
from .common import archive_of, body_bool
from .jobs import job_created
from .modalities import _json_body, _local_aet, _timeout, registry_of
from .responses import flag, json_response, text_response

MOVE_JOB = "DicomMoveScu"
GET_JOB = "DicomGetScu"


# ---- helpers ------------------------------------------------------------------
def queries_of(request: Request) -> q.QueryRegistry:
    state = request.app.state
    registry = getattr(state, "queries", None)
    if registry is None:
        registry = q.QueryRegistry(archive_of(request), state.config)
        state.queries = registry
    return registry


def _style(request: Request) -> str:
    """Orthanc's DICOM format arguments, full by default here."""
    if flag(request, "simplify"):
        return TagStyle.NAMES
    if flag(request, "short"):
        return TagStyle.SHORT
    return TagStyle.FULL


def _body_style(body: Mapping[str, Any], default: str) -> str:
    if body_bool(body, "Simplify", False):
        return TagStyle.NAMES
    if body_bool(body, "Short", False):
        return TagStyle.SHORT
    if body_bool(body, "Full", False):
        return TagStyle.FULL
    return default


def _charset(config: Mapping[str, Any]) -> str:
    return ENCODING_TERMS.get(str(config.get("DefaultEncoding") or "Latin1"), "ISO_IR 100")


def _encoding(config: Mapping[str, Any]) -> str:
    return str(config.get("DefaultEncoding") or "Latin1")


def _object_body(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw) if raw.strip() else None
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        raise BadFileFormat("Must provide a JSON object")
    return body


def _unsigned(body: Mapping[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadFileFormat(f"Integer value expected in field: {key}")
    return value


def _seconds(request: Request, modality: RemoteModality, timeout: int | None) -> float:
    return _timeout(request, {} if timeout is None else {"Timeout": timeout}, modality)


# ---- C-FIND: /modalities/{id}/query -------------------------------------------
def _outgoing(request: Request) -> query_scu.Outgoing:
    """Lua's ``OutgoingFindRequestFilter`` (and Python's) on every outgoing C-FIND."""
    archive = archive_of(request)
    encoding = _encoding(request.app.state.config)
    return lambda query, aet: find_filters.outgoing_identifier(archive, query, aet, encoding)


def _outgoing_as_given(request: Request, query: q.Query) -> query_scu.Outgoing:
    """``_outgoing`` for ``/modalities/{id}/query``: as in Orthanc (seen on 1.10.1), the
    filter's ``query`` holds every key the caller gave, those given empty (e.g.
    ``"PatientID": ""``) and those of other levels included; ``Normalize`` then drops
    what the filter answers of other levels, as Orthanc normalizes after the filter.
    (``query_scu.find_level`` adds the level, the character set and the level's return
    keys afterwards.)"""
    outgoing = _outgoing(request)
    given = {
        tag: value
        for tag, value in query.query.items()
        if tag != q.QUERY_RETRIEVE_LEVEL and tag >> 16 != 0x0002
    }
    allowed = q.allowed_keys(query.level) if query.normalize else None

    def run(_keys: Any, aet: str) -> Any:
        answer = outgoing(query_scu.identifier(given, None), aet)
        if allowed is not None:
            for element in list(answer):
                if element.tag not in allowed and element.tag != q.QUERY_RETRIEVE_LEVEL:
                    del answer[element.tag]
        return answer

    return run


def _run_query(request: Request, query: q.Query, modality: RemoteModality) -> Callable[[], str]:
    config = request.app.state.config
    seconds = _seconds(request, modality, query.timeout)
    registry = queries_of(request)

    def run() -> str:
        keys = q.find_keys(query.level, query.query, query.normalize)
        query.answers = query_scu.find_level(
            modality,
            query.local_aet,
            seconds,
            query.level,
            keys,
            _charset(config),
            _encoding(config),
            _outgoing_as_given(request, query),
        )
        return registry.add(query)

    return run


def _created(query_id: str) -> Response:
    return json_response({"ID": query_id, "Path": f"/queries/{query_id}"})


async def query_modality(request: Request) -> Response:
    body = _object_body(await request.body())
    if not isinstance(body.get("Level"), str):
        raise BadFileFormat("The JSON body must contain field Level")
    if "Normalize" in body and not isinstance(body["Normalize"], bool):
        raise BadFileFormat("The field Normalize must contain a Boolean")
    if "Query" in body and not isinstance(body["Query"], dict):
        raise BadFileFormat("The field Query must contain a JSON object")
    if "LocalAet" in body and not isinstance(body["LocalAet"], str):
        raise BadFileFormat("The field LocalAet must contain a string")
    name = request.path_params["name"]
    modality = await run_in_threadpool(registry_of(request).get, name)
    query = q.Query(
        modality=name,
        level=q.parse_level(body["Level"]),
        query=q.parse_query_keys(body.get("Query", {})),
        normalize=body.get("Normalize", True),
        local_aet=_local_aet(request, body, modality),
        timeout=_unsigned(body, "Timeout"),
    )
    return _created(await run_in_threadpool(_run_query(request, query, modality)))


# ---- /queries -----------------------------------------------------------------
async def list_queries(request: Request) -> Response:
    return json_response(await run_in_threadpool(queries_of(request).list))


async def _get(request: Request) -> q.Query:
    return await run_in_threadpool(queries_of(request).get, request.path_params["id"])


async def get_query(request: Request) -> Response:
    await _get(request)
    return json_response(["answers", "level", "modality", "query", "retrieve"])


async def delete_query(request: Request) -> Response:
    await run_in_threadpool(queries_of(request).delete, request.path_params["id"])
    return text_response("")


async def list_answers(request: Request) -> Response:
    query = await _get(request)
    if "expand" in request.query_params and request.query_params["expand"].lower() != "false":
        style = _style(request)
        return json_response([q.render(a, style) for a in query.answers])
    return json_response([str(i) for i in range(len(query.answers))])


async def get_answer(request: Request) -> Response:
    query = await _get(request)
    query.answer(request.path_params["index"])
    operations = ["content", "retrieve"]
    if query.level == Level.PATIENT:
        operations.append("query-study")  # sic: Orthanc's list (the route is query-studies)
    if query.level <= Level.STUDY:
        operations.append("query-series")
    if query.level <= Level.SERIES:
        operations.append("query-instances")
    return json_response(operations)


async def answer_content(request: Request) -> Response:
    query = await _get(request)
    return json_response(q.render(query.answer(request.path_params["index"]), _style(request)))


async def query_level(request: Request) -> Response:
    return text_response((await _get(request)).level.title)


async def query_modality_name(request: Request) -> Response:
    return text_response((await _get(request)).modality)


async def query_arguments(request: Request) -> Response:
    return json_response(q.render((await _get(request)).query, _style(request)))


def _child_query(child: Level) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        parent = await _get(request)
        answer = parent.answer(request.path_params["index"])
        if child <= parent.level:
            raise UnknownResource(f"No child {child.plural} below a {parent.level.title} answer")
        body = _object_body(await request.body())
        modality = await run_in_threadpool(registry_of(request).get, parent.modality)
        keys = q.parse_query_keys(body["Query"]) if "Query" in body else {}
        for tag, value in q.retrieve_keys(parent.level, answer).items():
            if tag != q.QUERY_RETRIEVE_LEVEL:
                keys[tag] = value
        timeout = _unsigned(body, "Timeout")
        query = q.Query(
            modality=parent.modality,
            level=child,
            query=keys,
            normalize=parent.normalize,
            local_aet=parent.local_aet,
            timeout=parent.timeout if timeout is None else timeout,
        )
        return _created(await run_in_threadpool(_run_query(request, query, modality)))

    return endpoint


# ---- retrieve: jobs -----------------------------------------------------------
def _short_keys(keys: Mapping[int, str]) -> dict[str, str]:
    return {format_tag(t): v for t, v in keys.items()}


def _from_short(keys: Mapping[str, str]) -> dict[int, str]:
    return {parse_tag(t): v for t, v in keys.items()}


def retrieve_content(params: Mapping[str, Any]) -> dict[str, Any]:
    """The public content of a retrieve job (Orthanc 1.12's fields)."""
    style = params.get("QueryFormat", TagStyle.SHORT)
    content: dict[str, Any] = {
        "Description": "REST API",
        "LocalAet": params["LocalAet"],
        "RemoteAet": params["Modality"]["aet"],
        "Query": [q.render(_from_short(item), style) for item in params["Query"]],
    }
    if params["Method"] == "C-MOVE":
        content["TargetAet"] = params["TargetAet"]
    return content


def run_retrieve(
    archive: Any,
    params: Mapping[str, Any],
    progress: Callable[[float], None] | None = None,
) -> dict[str, Any]:
    """Work off a retrieve: one C-MOVE or C-GET per identifier, one association."""
    modality = RemoteModality(**params["Modality"])
    identifiers = [_from_short(keys) for keys in params["Identifiers"]]
    total = max(1, len(identifiers))

    def done(number: int, _counts: query_scu.RetrieveCounts) -> None:
        if progress is not None:
            progress((number + 1) / total)

    if params["Method"] == "C-MOVE":
        query_scu.move(
            modality,
            params["LocalAet"],
            params["Timeout"],
            params["TargetAet"],
            identifiers,
            on_done=done,
        )
    else:
        query_scu.get(
            archive, modality, params["LocalAet"], params["Timeout"], identifiers, on_done=done
        )
    return retrieve_content(params)


def _run_retrieve_job(context: JobContext) -> None:
    context.content = retrieve_content(context.parameters)
    run_retrieve(
        context.archive,
        context.parameters,
        lambda fraction: context.checkpoint(min(fraction, 0.99)),
    )


job_types.register_kind(MOVE_JOB, _run_retrieve_job)
job_types.register_kind(GET_JOB, _run_retrieve_job)


async def _submit_retrieve(
    request: Request,
    body: Mapping[str, Any],
    params: dict[str, Any],
) -> Response:
    asynchronous = wants_job(body)
    job_priority = priority(body)  # checked either way, as for the other job routes
    if not asynchronous:
        archive = archive_of(request)
        return json_response(await run_in_threadpool(run_retrieve, archive, params))
    job_id = await run_in_threadpool(
        jobs_engine.submit,
        archive_of(request),
        MOVE_JOB if params["Method"] == "C-MOVE" else GET_JOB,
        params,
        job_priority,
        body.get("UserData"),
        retrieve_content(params),
    )
    return job_created(job_id)


def _method(request: Request, body: Mapping[str, Any], modality: RemoteModality) -> str:
    config = request.app.state.config
    return retrieve_method(body.get("RetrieveMethod"), modality, config)


def _retrieve_params(
    request: Request,
    modality: RemoteModality,
    local_aet: str,
    timeout: float,
    method: str,
    target_aet: str,
    identifiers: list[dict[int, str]],
    query_items: list[dict[int, str]],
    style: str,
) -> dict[str, Any]:
    return {
        "Modality": {
            f: getattr(modality, f)
            for f in modality.__dataclass_fields__  # type: ignore[attr-defined]
        },
        "LocalAet": local_aet,
        "Timeout": timeout,
        "Method": method,
        "TargetAet": target_aet,
        "Identifiers": [_short_keys(k) for k in identifiers],
        "Query": [_short_keys(k) for k in query_items],
        "QueryFormat": style,
    }


def _retrieve_answers(all_answers: bool) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        query = await _get(request)
        answers = query.answers if all_answers else [query.answer(request.path_params["index"])]
        raw = await request.body()
        modality = await run_in_threadpool(registry_of(request).get, query.modality)
        config = request.app.state.config
        target = modality.local_aet or str(config.get("DicomAet") or "ORTHANC")
        body: dict[str, Any] = {}
        try:
            parsed = orjson.loads(raw) if raw.strip() else None
        except orjson.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict):
            body = parsed
            value = body.get("TargetAet", target)
            if not isinstance(value, str):
                raise BadFileFormat('"TargetAet" must be a string')
            target = value
        elif raw.strip():  # the body is the target AET itself, as plain text
            target = raw.decode("utf-8", "replace").strip()
        timeout = _unsigned(body, "Timeout")
        if timeout is None:
            timeout = query.timeout
        levels = [q.answer_level(a, query.level) for a in answers]
        params = _retrieve_params(
            request,
            modality,
            query.local_aet,
            _seconds(request, modality, timeout),
            _method(request, body, modality),
            target,
            [q.retrieve_keys(level, a) for level, a in zip(levels, answers, strict=True)],
            [q.job_query_item(a) for a in answers],
            _body_style(body, TagStyle.SHORT),
        )
        return await _submit_retrieve(request, body, params)

    return endpoint


# ---- /modalities/{id}/move and /get ---------------------------------------------
def _move_or_get(method: str) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        raw = await request.body()
        try:
            body = orjson.loads(raw) if raw.strip() else None
        except orjson.JSONDecodeError:
            body = None
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("Resources"), list)
            or not isinstance(body.get("Level"), str)
        ):
            raise BadFileFormat("Must provide a JSON body containing fields Resources and Level")
        level = q.parse_level(body["Level"])
        modality = await run_in_threadpool(registry_of(request).get, request.path_params["name"])
        config = request.app.state.config
        identifiers = []
        for item in body["Resources"]:
            keys = q.parse_query_keys(item, "Resources elements")
            keys[q.QUERY_RETRIEVE_LEVEL] = q.WIRE_LEVELS[level]
            identifiers.append(keys)
        target = body.get("TargetAet", str(config.get("DicomAet") or "ORTHANC"))
        if not isinstance(target, str):
            raise BadFileFormat('"TargetAet" must be a string')
        params = _retrieve_params(
            request,
            modality,
            _local_aet(request, body, modality),
            _timeout(request, body, modality),
            method,
            target,
            identifiers,
            identifiers,
            TagStyle.SHORT,
        )
        return await _submit_retrieve(request, body, params)

    return endpoint


# ---- the older find routes ----------------------------------------------------
_PATIENT_TEMPLATE = (0x00100010, 0x00100020, 0x00100030, 0x00100040, 0x00101000)
_STUDY_TEMPLATE = (
    0x00080020,
    0x00080030,
    0x00200010,
    0x00081030,
    0x00080050,
    0x0020000D,
    0x00080090,
)
_SERIES_TEMPLATE = (
    0x00080021,
    0x00080031,
    0x00080060,
    0x0008103E,
    0x00180015,
    0x00181030,
    0x00200011,
    0x0020000E,
    0x00081070,
    0x00400254,
)
_INSTANCE_TEMPLATE = (0x00080012, 0x00080013, 0x00200013, 0x00080018)
_TEMPLATES = {
    Level.PATIENT: _PATIENT_TEMPLATE,
    Level.STUDY: _STUDY_TEMPLATE,
    Level.SERIES: _SERIES_TEMPLATE,
    Level.INSTANCE: _INSTANCE_TEMPLATE,
}
#: Keys of the upper levels every find-* request of a level carries.
_CARRIED = {
    Level.PATIENT: (),
    Level.STUDY: (0x00100020, 0x00080050),
    Level.SERIES: (0x00100020, 0x00080050, 0x0020000D),
    Level.INSTANCE: (0x00100020, 0x00080050, 0x0020000D, 0x0020000E),
}
#: Keys a find-* request carries only when the body gives them.
_CARRIED_IF_GIVEN = {Level.STUDY: (0x00080061,)}
#: Keys that must hold more than two characters or the request is refused (Orthanc
#: answers 400 with no body instead of sending a too broad C-FIND).
_REQUIRED = {
    Level.STUDY: ((0x00080050, 0x00100020),),
    Level.SERIES: ((0x00080050, 0x00100020), (0x0020000D,)),
    Level.INSTANCE: ((0x00080050, 0x00100020), (0x0020000D,), (0x0020000E,)),
}


class _TooBroad(Exception):
    pass


def _old_find_keys(level: Level, given: Mapping[int, str]) -> dict[int, str]:
    keys = {tag: "" for tag in _TEMPLATES[level]}
    for tag in _CARRIED[level]:
        keys.setdefault(tag, "")
    for tag in _CARRIED_IF_GIVEN.get(level, ()):
        if tag in given:
            keys[tag] = ""
    for tag, value in given.items():
        if tag in keys:
            keys[tag] = value
    for group in _REQUIRED.get(level, ()):
        if all(len(keys.get(tag, "")) <= 2 for tag in group):
            raise _TooBroad()
    return keys


def _old_find(
    request: Request, modality: RemoteModality, level: Level, given: Mapping[int, str]
) -> list[dict[str, Any]]:
    config = request.app.state.config
    keys = q.find_keys(level, _old_find_keys(level, given), True)
    if level == Level.INSTANCE:  # Orthanc's find-instance asks for it too (1.10.1, on the wire)
        keys.setdefault(query_scu.MEDIA_STORAGE_SOP_INSTANCE_UID, "")
    answers = query_scu.find_level(
        modality,
        _local_aet(request, {}, modality),
        _timeout(request, {}, modality),
        level,
        keys,
        _charset(config),
        _encoding(config),
        _outgoing(request),
    )
    return [q.render(a, TagStyle.NAMES) for a in answers]


def _old_find_route(level: Level) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        given = q.parse_query_keys(_object_body(await request.body()))
        modality = await run_in_threadpool(registry_of(request).get, request.path_params["name"])
        try:
            answers = await run_in_threadpool(_old_find, request, modality, level, given)
        except _TooBroad:
            return Response(b"", 400)
        return json_response(answers)

    return endpoint


def _hierarchical_find(
    request: Request, modality: RemoteModality, given: Mapping[int, str]
) -> list[dict[str, Any]]:
    """``/find``: the patients, each with its studies, each with its series."""
    patients = []
    for patient in _old_find(request, modality, Level.PATIENT, given):
        study_keys = dict(given)
        study_keys[0x00100020] = patient.get("PatientID", "")
        studies = []
        try:
            found = _old_find(request, modality, Level.STUDY, study_keys)
        except _TooBroad:
            found = []
        for study in found:
            series_keys = dict(given)
            series_keys[0x00100020] = study.get("PatientID", "")
            series_keys[0x0020000D] = study.get("StudyInstanceUID", "")
            try:
                study["Series"] = _old_find(request, modality, Level.SERIES, series_keys)
            except _TooBroad:
                study["Series"] = []
            studies.append(study)
        patient["Studies"] = studies
        patients.append(patient)
    return patients


async def find_hierarchy(request: Request) -> Response:
    given = q.parse_query_keys(_object_body(await request.body()))
    modality = await run_in_threadpool(registry_of(request).get, request.path_params["name"])
    return json_response(await run_in_threadpool(_hierarchical_find, request, modality, given))


async def find_worklist(request: Request) -> Response:
    """Worklist C-FIND. The body is the query itself, or (1.12) ``{"Query": {...}}``
    with ``Short`` / ``Full``; answers are simplified unless asked otherwise."""
    body = _json_body(await request.body(), allow_empty=False)
    if not isinstance(body, dict):
        raise BadFileFormat("Must provide a JSON object")
    style = "simplify"
    keys = body
    if isinstance(body.get("Query"), dict):
        keys = body["Query"]
        if body_bool(body, "Short", False):
            style = "short"
        elif body_bool(body, "Full", False):
            style = "full"
    config = request.app.state.config
    identifier = query_scu.identifier_from_json(keys, _charset(config))
    modality = await run_in_threadpool(registry_of(request).get, request.path_params["name"])
    answers = await run_in_threadpool(
        query_scu.find_worklist,
        modality,
        _local_aet(request, {}, modality),
        _timeout(request, {}, modality),
        identifier,
        _outgoing(request),
    )
    from ..dicom.tags_json import render_tags

    rendered = []
    for answer in answers:
        charsets = dataset_charsets(answer, _encoding(config))
        if style == "simplify":
            rendered.append(simplified_tags(answer, charsets, None))
        else:
            rendered.append(render_tags(answer, charsets, style, None))  # type: ignore[arg-type]
    return json_response(rendered)


def routes() -> list[Route]:
    answer = "/queries/{id}/answers/{index}"
    return [
        Route("/modalities/{name}/query", query_modality, methods=["POST"]),
        Route("/modalities/{name}/move", _move_or_get("C-MOVE"), methods=["POST"]),
        Route("/modalities/{name}/get", _move_or_get("C-GET"), methods=["POST"]),
        Route("/modalities/{name}/find", find_hierarchy, methods=["POST"]),
        Route("/modalities/{name}/find-patient", _old_find_route(Level.PATIENT), methods=["POST"]),
        Route("/modalities/{name}/find-study", _old_find_route(Level.STUDY), methods=["POST"]),
        Route("/modalities/{name}/find-series", _old_find_route(Level.SERIES), methods=["POST"]),
        Route(
            "/modalities/{name}/find-instance", _old_find_route(Level.INSTANCE), methods=["POST"]
        ),
        Route("/modalities/{name}/find-worklist", find_worklist, methods=["POST"]),
        Route("/queries", list_queries, methods=["GET"]),
        Route("/queries/{id}", get_query, methods=["GET"]),
        Route("/queries/{id}", delete_query, methods=["DELETE"]),
        Route("/queries/{id}/answers", list_answers, methods=["GET"]),
        Route(answer, get_answer, methods=["GET"]),
        Route(answer + "/content", answer_content, methods=["GET"]),
        Route(answer + "/retrieve", _retrieve_answers(False), methods=["POST"]),
        Route(answer + "/query-studies", _child_query(Level.STUDY), methods=["POST"]),
        Route(answer + "/query-series", _child_query(Level.SERIES), methods=["POST"]),
        Route(answer + "/query-instances", _child_query(Level.INSTANCE), methods=["POST"]),
        Route("/queries/{id}/level", query_level, methods=["GET"]),
        Route("/queries/{id}/modality", query_modality_name, methods=["GET"]),
        Route("/queries/{id}/query", query_arguments, methods=["GET"]),
        Route("/queries/{id}/retrieve", _retrieve_answers(True), methods=["POST"]),
    ]
