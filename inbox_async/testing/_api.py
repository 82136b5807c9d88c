"""The documented endpoints: routing on the raw path and the handlers over the store."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any, Literal
from urllib.parse import parse_qs, unquote

import msgspec

from ._state import (
    ID_PATTERN,
    IMPORT_JOB_STATUSES,
    TERMINAL_JOB_STATUSES,
    CsvImport,
    ImportJob,
    LeadList,
    Prospect,
    Scalar,
    Store,
    is_platform_number,
)

__all__ = ["API_PREFIX", "Api", "ApiError", "Call", "ErrorFormat", "error_body", "reason"]

API_PREFIX = "/api/v1/"
ErrorFormat = Literal["envelope", "flat"]

_encode = msgspec.json.encode
_decode = msgspec.json.decode

_MAX_PLATFORM_IDS = 2000
_DEFAULT_PAGE = 50
_MAX_PAGE = 100
_CONTEXT_FIELDS = frozenset(
    {"notes", "valuation", "statusId", "addTags", "removeTags", "assigneeId", "done"}
)
_CSV_FIELDS = frozenset({"type", "content", "fileName", "columnMapping", "mergeStrategy"})
_IMPORT_TYPES = frozenset({"csv", "followers", "likes"})

_DEFAULT_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    422: "UNPROCESSABLE_ENTITY",
    429: "RATE_LIMITED",
    500: "INTERNAL_SERVER_ERROR",
    502: "BAD_GATEWAY",
    503: "SERVICE_UNAVAILABLE",
    504: "GATEWAY_TIMEOUT",
}


def reason(status: int) -> str:
    """Return the HTTP reason phrase of ``status`` ("Error" for unregistered codes)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def default_code(status: int) -> str:
    """Return the envelope ``code`` used for ``status`` when nothing more specific applies."""
    code = _DEFAULT_CODES.get(status)
    if code is not None:
        return code
    phrase = reason(status)
    return phrase.upper().replace(" ", "_").replace("-", "_") if phrase != "Error" else "ERROR"


def error_body(status: int, code: str | None, message: str, error_format: ErrorFormat) -> bytes:
    """Encode an error in the documented envelope or in the flat form of the auth page."""
    if error_format == "flat":
        return _encode({"error": reason(status), "message": message})
    return _encode(
        {"error": {"code": code or default_code(status), "message": message, "status": status}}
    )


class ApiError(Exception):
    """An error response: status, envelope code, message and extra headers."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def _bad_request(message: str) -> ApiError:
    """Build the 400 raised for invalid parameters or bodies."""
    return ApiError(400, "BAD_REQUEST", message)


class Call:
    """What a handler needs from the request: decoded path parameters, query and body."""

    __slots__ = ("body", "commit", "content_type", "params", "query")

    def __init__(
        self, params: list[str], query: str, content_type: str, body: bytes, commit: bool
    ) -> None:
        self.params = params
        self.query = query
        self.content_type = content_type
        self.body = body
        # False when a fault (a truncated body) only needs the response: nothing may change.
        self.commit = commit


Handler = Callable[["Api", Call], tuple[int, bytes]]


def _is_json(content_type: str) -> bool:
    """Tell whether a Content-Type header names JSON."""
    media = content_type.partition(";")[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _json_object(
    call: Call, allowed: frozenset[str], *, allow_empty: bool = False
) -> dict[str, Any]:
    """Decode the body as a JSON object whose keys are all in ``allowed``."""
    if not call.body:
        if allow_empty:
            return {}
        raise _bad_request("A JSON request body is required")
    if not _is_json(call.content_type):
        raise _bad_request("Content-Type must be application/json")
    try:
        value = _decode(call.body)
    except msgspec.MsgspecError:
        raise _bad_request("Malformed JSON in the request body") from None
    if not isinstance(value, dict):
        raise _bad_request("The request body must be a JSON object")
    for key in value:
        if key not in allowed:
            raise _bad_request(f"Unknown field {key!r} in the request body")
    return value


def _platform_ids(call: Call) -> list[str]:
    """Read and check the ``{"platformIds": [...]}`` body of the add and remove endpoints."""
    ids = _json_object(call, frozenset({"platformIds"})).get("platformIds")
    if not isinstance(ids, list):
        raise _bad_request("platformIds must be an array of strings")
    if not 1 <= len(ids) <= _MAX_PLATFORM_IDS:
        raise _bad_request(f"platformIds must hold 1 to {_MAX_PLATFORM_IDS} ids, got {len(ids)}")
    for platform_id in ids:
        if not isinstance(platform_id, str) or not platform_id:
            raise _bad_request("platformIds must hold non-empty strings")
    return ids


def _optional_str(payload: Mapping[str, Any], key: str) -> None:
    """Check that ``payload[key]``, if present, is a string or null."""
    if key in payload and payload[key] is not None and not isinstance(payload[key], str):
        raise _bad_request(f"{key} must be a string or null")


def _str_list(payload: Mapping[str, Any], key: str) -> list[str]:
    """Return ``payload[key]`` as a list of strings (empty when absent)."""
    value = payload.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _bad_request(f"{key} must be an array of strings")
    return value


class Api:
    """Routes requests to the endpoint handlers and runs them over a ``Store``."""

    __slots__ = ("store",)

    def __init__(self, store: Store) -> None:
        self.store = store

    def dispatch(
        self,
        method: str,
        path: str,
        query: str,
        content_type: str,
        body: bytes,
        commit: bool,
    ) -> tuple[int, bytes]:
        """Answer one authorised request; errors are raised as ``ApiError``."""
        routes, raw_params = _resolve(path)
        if routes is None:
            raise ApiError(404, "NOT_FOUND", f"No route matches {path}")
        handler = routes.get(method)
        if handler is None:
            allowed = ", ".join(routes)
            raise ApiError(
                405, "METHOD_NOT_ALLOWED", f"{method} is not allowed here", {"Allow": allowed}
            )
        # The route matched on raw segments; only now is each one decoded, so an encoded
        # "/" or ".." stays inside its segment as a literal value.
        params = [unquote(param) for param in raw_params]
        return handler(self, Call(params, query, content_type, body, commit))

    # -- helpers ------------------------------------------------------------------------

    def _list(self, list_id: str) -> LeadList:
        """Return the list named by a path parameter, or raise 400/404."""
        if not ID_PATTERN.fullmatch(list_id):
            raise _bad_request(f"Invalid list id {list_id!r}: it must match ^[0-9a-z]+$")
        lead_list = self.store.lists.get(list_id)
        if lead_list is None:
            raise ApiError(404, "LIST_NOT_FOUND", f"List {list_id} not found")
        return lead_list

    def _prospect(self, prospect_id: str) -> Prospect:
        """Return the prospect named by a path parameter, or raise 400/404."""
        if not ID_PATTERN.fullmatch(prospect_id):
            raise _bad_request(f"Invalid prospect id {prospect_id!r}: it must match ^[0-9a-z]+$")
        prospect = self.store.prospects.get(prospect_id)
        if prospect is None:
            raise ApiError(404, "PROSPECT_NOT_FOUND", f"Prospect {prospect_id} not found")
        return prospect

    def _job(self, lead_list: LeadList, job_id: str) -> ImportJob:
        """Return the import job named by a path parameter, or raise 400/404."""
        if not ID_PATTERN.fullmatch(job_id):
            raise _bad_request(f"Invalid import job id {job_id!r}: it must match ^[0-9a-z]+$")
        job = lead_list.jobs.get(job_id)
        if job is None:
            raise ApiError(404, "IMPORT_JOB_NOT_FOUND", f"Import job {job_id} not found")
        return job

    # -- lists and leads ----------------------------------------------------------------

    def update_lead(self, call: Call) -> tuple[int, bytes]:
        """PATCH /lists/{listId}/leads/{platformId}: set or clear column values."""
        lead_list = self._list(call.params[0])
        platform_id = call.params[1]
        current = lead_list.leads.get(platform_id)
        if current is None:
            raise ApiError(
                404, "LEAD_NOT_FOUND", f"Lead {platform_id!r} is not in list {lead_list.id}"
            )
        changes = _json_object(call, frozenset({"data"})).get("data")
        if not isinstance(changes, dict):
            raise _bad_request("data must be an object of column values")
        for column_id in changes:
            if column_id not in lead_list.columns:
                raise ApiError(
                    400,
                    "UNKNOWN_COLUMN",
                    f"Column {column_id!r} does not exist on list {lead_list.id}",
                )
        for column_id, value in changes.items():
            if value is not None and not isinstance(value, str | int | float):
                raise ApiError(
                    422,
                    "INVALID_VALUE",
                    f"Value of {column_id!r} must be a string, number, boolean or null",
                )
        updated: dict[str, Scalar] = dict(current)
        for column_id, value in changes.items():
            if value is None:
                updated.pop(column_id, None)
            else:
                updated[column_id] = value
        if call.commit:
            lead_list.leads[platform_id] = updated
        return 200, self.store.prospect_for(platform_id).lead_json(updated)

    def add_leads(self, call: Call) -> tuple[int, bytes]:
        """POST /lists/{listId}/leads: add leads, reporting added, skipped and failed ids."""
        lead_list = self._list(call.params[0])
        added: list[str] = []
        skipped: list[str] = []
        failed: list[str] = []
        seen: set[str] = set()
        for platform_id in _platform_ids(call):
            if platform_id in lead_list.leads or platform_id in seen:
                skipped.append(platform_id)
            elif not is_platform_number(platform_id):
                # Only numeric X user ids can be resolved to a profile.
                failed.append(platform_id)
            else:
                seen.add(platform_id)
                added.append(platform_id)
        if call.commit:
            for platform_id in added:
                lead_list.leads[platform_id] = {}
                self.store.prospect_for(platform_id)
        return 200, _encode({"added": added, "skipped": skipped, "failed": failed})

    def remove_leads(self, call: Call) -> tuple[int, bytes]:
        """DELETE /lists/{listId}/leads: remove leads, reporting how many were in the list."""
        lead_list = self._list(call.params[0])
        present = {pid for pid in _platform_ids(call) if pid in lead_list.leads}
        if call.commit:
            for platform_id in present:
                del lead_list.leads[platform_id]
        return 200, _encode({"removed": len(present)})

    # -- import jobs --------------------------------------------------------------------

    def list_import_jobs(self, call: Call) -> tuple[int, bytes]:
        """GET /lists/{listId}/import-jobs: newest first, filtered by status, paginated."""
        lead_list = self._list(call.params[0])
        query = parse_qs(call.query, keep_blank_values=True)
        statuses = query.get("status", [])
        for status in statuses:
            if status not in IMPORT_JOB_STATUSES:
                raise _bad_request(f"Invalid status {status!r}")
        limit = _DEFAULT_PAGE
        if "limit" in query:
            text = query["limit"][-1]
            if not (text.isascii() and text.isdigit() and 1 <= int(text) <= _MAX_PAGE):
                raise _bad_request(f"limit must be an integer from 1 to {_MAX_PAGE}")
            limit = int(text)
        cursor = query.get("cursor", [""])[-1]
        if call.commit:
            # Queued CSV imports run when first observed, so a poller sees them finish
            # while a cancel sent right after creation still finds them queued.
            for job in lead_list.jobs.values():
                if job.pending is not None and job.status == "queued":
                    self.store.run_import(lead_list, job)
        order = list(reversed(lead_list.jobs))
        start = 0
        if cursor:
            if cursor not in lead_list.jobs:
                raise _bad_request("Invalid cursor")
            start = order.index(cursor) + 1
        wanted = frozenset(statuses)
        page: list[dict[str, object]] = []
        next_cursor: str | None = None
        for job_id in order[start:]:
            job = lead_list.jobs[job_id]
            if wanted and job.status not in wanted:
                continue
            if len(page) == limit:
                next_cursor = str(page[-1]["id"])
                break
            page.append(job.fields)
        return 200, _encode({"data": page, "nextCursor": next_cursor})

    def create_import_job(self, call: Call) -> tuple[int, bytes]:
        """POST /lists/{listId}/import-jobs: queue an import (CSV ones really import)."""
        lead_list = self._list(call.params[0])
        data = _json_object(call, frozenset({"data"})).get("data")
        if not isinstance(data, dict):
            raise _bad_request("data must be an object describing the import")
        kind = data.get("type")
        if kind not in _IMPORT_TYPES:
            raise _bad_request(f"type must be one of {sorted(_IMPORT_TYPES)}")
        pending = _csv_import(data, lead_list) if kind == "csv" else None
        job = self.store.new_import_job(lead_list, str(kind), pending)
        if call.commit:
            lead_list.jobs[job.id] = job
        return 200, _encode(job.fields)

    def cancel_import_job(self, call: Call) -> tuple[int, bytes]:
        """POST /lists/{listId}/import-jobs/{importJobId}/cancel: cancel a pending job."""
        lead_list = self._list(call.params[0])
        job = self._job(lead_list, call.params[1])
        _json_object(call, frozenset(), allow_empty=True)
        if job.status in TERMINAL_JOB_STATUSES:
            raise ApiError(409, "CONFLICT", f"Import job {job.id} is already {job.status}")
        target = job if call.commit else ImportJob(dict(job.fields), None)
        target.pending = None
        target.set_status("canceled", time.time())
        return 200, _encode(target.fields)

    # -- prospects ----------------------------------------------------------------------

    def lookup_prospect(self, call: Call) -> tuple[int, bytes]:
        """GET /prospects/lookup?platformId=: the prospect with context, or ``null``."""
        values = parse_qs(call.query, keep_blank_values=True).get("platformId", [""])
        platform_id = values[0]
        if not platform_id:
            raise _bad_request("The platformId query parameter is required")
        prospect_id = self.store.by_platform.get(platform_id)
        if prospect_id is None:
            return 200, b"null"
        return 200, self.store.prospects[prospect_id].with_context_json()

    def get_prospect(self, call: Call) -> tuple[int, bytes]:
        """GET /prospects/{prospectId}: the prospect with context."""
        return 200, self._prospect(call.params[0]).with_context_json()

    def update_context(self, call: Call) -> tuple[int, bytes]:
        """PATCH /prospects/{prospectId}/context: update notes, tags, status and the like."""
        prospect = self._prospect(call.params[0])
        payload = _json_object(call, _CONTEXT_FIELDS)
        for key in ("notes", "statusId", "assigneeId"):
            _optional_str(payload, key)
        valuation = payload.get("valuation")
        if valuation is not None and (
            isinstance(valuation, bool) or not isinstance(valuation, int | float)
        ):
            raise _bad_request("valuation must be a number or null")
        add_tags = _str_list(payload, "addTags")
        remove_tags = set(_str_list(payload, "removeTags"))
        done = payload.get("done", prospect.done)
        if not isinstance(done, bool):
            raise _bad_request("done must be a boolean")
        context = dict(prospect.context)
        for key in ("notes", "statusId", "assigneeId", "valuation"):
            if key in payload:
                context[key] = payload[key]
        tags = [str(tag) for tag in _as_list(context.get("tags"))]
        tags.extend(tag for tag in dict.fromkeys(add_tags) if tag not in tags)
        context["tags"] = [tag for tag in tags if tag not in remove_tags]
        if call.commit:
            prospect.context = context
            prospect.done = done
        return 200, prospect.with_context_json(context)


def _as_list(value: object) -> list[object]:
    """Return ``value`` if it is a list, else an empty list."""
    return value if isinstance(value, list) else []


def _csv_import(data: Mapping[str, Any], lead_list: LeadList) -> CsvImport:
    """Check the ``data`` of a CSV import request and describe the import to run."""
    for key in data:
        if key not in _CSV_FIELDS:
            raise _bad_request(f"Unknown field {key!r} in data")
    content = data.get("content")
    if not isinstance(content, str):
        raise _bad_request("data.content must be the CSV text")
    if "fileName" in data and not isinstance(data["fileName"], str):
        raise _bad_request("data.fileName must be a string")
    if data.get("mergeStrategy", "overwrite") != "overwrite":
        raise _bad_request("data.mergeStrategy must be 'overwrite'")
    mapping = data.get("columnMapping", [])
    if not isinstance(mapping, list):
        raise _bad_request("data.columnMapping must be an array")
    pairs: list[tuple[str, str]] = []
    for item in mapping:
        if (
            not isinstance(item, dict)
            or set(item) != {"csvHeader", "targetColumnId"}
            or not isinstance(item["csvHeader"], str)
            or not isinstance(item["targetColumnId"], str)
        ):
            raise _bad_request(
                "data.columnMapping items must be {csvHeader: string, targetColumnId: string}"
            )
        if item["targetColumnId"] not in lead_list.columns:
            raise ApiError(
                400,
                "UNKNOWN_COLUMN",
                f"Column {item['targetColumnId']!r} does not exist on list {lead_list.id}",
            )
        pairs.append((item["csvHeader"], item["targetColumnId"]))
    return CsvImport(content, pairs)


_LEAD: dict[str, Handler] = {"PATCH": Api.update_lead}
_LEADS: dict[str, Handler] = {"POST": Api.add_leads, "DELETE": Api.remove_leads}
_JOBS: dict[str, Handler] = {"GET": Api.list_import_jobs, "POST": Api.create_import_job}
_CANCEL: dict[str, Handler] = {"POST": Api.cancel_import_job}
_LOOKUP: dict[str, Handler] = {"GET": Api.lookup_prospect}
_PROSPECT: dict[str, Handler] = {"GET": Api.get_prospect}
_CONTEXT: dict[str, Handler] = {"PATCH": Api.update_context}


def _resolve(path: str) -> tuple[dict[str, Handler] | None, list[str]]:
    """Match a raw (still percent-encoded) path to its routes and raw path parameters."""
    if not path.startswith(API_PREFIX):
        return None, []
    parts = path[len(API_PREFIX) :].split("/")
    count = len(parts)
    # An empty segment (a doubled or trailing slash) never matches a parameter.
    if count >= 3 and parts[0] == "lists" and parts[1]:
        if parts[2] == "leads":
            if count == 3:
                return _LEADS, [parts[1]]
            if count == 4 and parts[3]:
                return _LEAD, [parts[1], parts[3]]
        elif parts[2] == "import-jobs":
            if count == 3:
                return _JOBS, [parts[1]]
            if count == 5 and parts[3] and parts[4] == "cancel":
                return _CANCEL, [parts[1], parts[3]]
    elif parts[0] == "prospects" and count >= 2 and parts[1]:
        if count == 2:
            return (_LOOKUP, []) if parts[1] == "lookup" else (_PROSPECT, [parts[1]])
        if count == 3 and parts[2] == "context":
            return _CONTEXT, [parts[1]]
    return None, []
