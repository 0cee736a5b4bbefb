"""The leaderboard web application (FastAPI on Starlette, served by uvicorn).

Pages (every table also as ``.csv`` and ``.json`` beside it)::

    /                                   the boards, with their top entries
    /board/SCALE/TRACK/                 ranking (ranking.csv, ranking.json)
    /submission/ID/[?baseline=ID]       one entry (tasks.csv, tasks.json, delta.png, files/...)
    /compare/ID+ID[+ID[+ID]]/           2-4 entries (compare.csv, compare.json, compare.png)
    /submit/                            upload form (token + archive)

JSON API::

    GET  /api/boards                    boards and their entry counts
    GET  /api/boards/SCALE/TRACK        a ranking
    GET  /api/submissions/ID            one entry, every task, files, provenance
    GET  /api/compare?ids=A&ids=B       a comparison
    POST /api/submissions               body: the submission folder as a tar (or .tar.gz),
                                        header ``Authorization: Bearer TOKEN``;
                                        201 {id, url} | 200 (already there) | 401 | 413 | 422 {problems}

Clients never see a stack trace: unexpected errors answer 500 with one line and are
logged on the server. Every page carries a Content-Security-Policy that allows only this
site's own script and style files.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
)
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from datacomp_sci.leaderboard import views
from datacomp_sci.leaderboard.ingest import Limits, Rejected, receive_archive
from datacomp_sci.leaderboard.pages import STATIC, Pages
from datacomp_sci.leaderboard.store import Store

log = logging.getLogger("datacomp_sci.leaderboard")

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "img-src 'self'; form-action 'self'; base-uri 'none'; "
                               "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
FORM_OVERHEAD = 64 << 10     # multipart boundaries and the token field
PLOT_CACHE = 256


@dataclass(frozen=True)
class ServerOptions:
    limits: Limits = Limits()
    public_url: str | None = None      # base of the URLs returned to uploaders


def _bearer(header: str | None) -> str | None:
    if header and header[:7].lower() == "bearer ":
        return header[7:].strip()
    return None


def create_app(store: Store, options: ServerOptions = ServerOptions()):
    """The ASGI application for one board."""
    from fastapi.responses import RedirectResponse

    app = FastAPI(title=store.settings.title, docs_url=None, redoc_url=None, openapi_url=None)
    pages = Pages(store)
    limits = options.limits
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    @app.middleware("http")
    async def headers(request: Request, call_next):
        response = await call_next(request)
        for k, v in SECURITY_HEADERS.items():
            response.headers.setdefault(k, v)
        return response

    def wants_json(request: Request) -> bool:
        return request.url.path.startswith("/api/")

    def error(request: Request, status: int, message: str):
        if wants_json(request):
            return JSONResponse({"error": message}, status_code=status)
        return HTMLResponse(pages.error(status, message, request.url.path.lstrip("/")),
                            status_code=status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        message = exc.detail if isinstance(exc.detail, str) else "error"
        if exc.status_code == 404 and message == "Not Found":
            message = "no such page"
        return error(request, exc.status_code, message)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError):
        return error(request, 400, "malformed request: " + "; ".join(
            f"{'.'.join(map(str, e.get('loc', ())))}: {e.get('msg')}" for e in exc.errors()[:5]))

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception):
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error(request, 500, "internal error (it is logged on the server)")

    def base_url(request: Request) -> str:
        return (options.public_url or str(request.base_url)).rstrip("/") + "/"

    def entry_or_404(entry_id: str):
        entry = store.get(entry_id)
        if entry is None:
            raise HTTPException(404, f"no entry {entry_id!r} on this board")
        return entry

    def baseline_for(entry, baseline: str | None):
        if baseline:
            base = store.get(baseline)
            if base is None or base.id == entry.id:
                raise HTTPException(404, f"no baseline entry {baseline!r}")
            return base
        return views.default_baseline(store, entry)

    def board_or_404(scale: str, track: str):
        table, _ = views.ranking(store, scale, track)
        if not table.rows:
            raise HTTPException(404, f"no entries for scale {scale!r}, track {track!r}")
        return table

    def compare_or_error(ids: list[str]):
        try:
            return views.resolve_compare(store, ids)
        except ValueError as e:
            raise HTTPException(400, str(e)) from None
        except LookupError as e:
            raise HTTPException(404, str(e)) from None

    plots: OrderedDict[tuple, bytes] = OrderedDict()
    plots_lock = threading.Lock()

    def cached_png(key: tuple, draw) -> Response:
        """Entries never change (their id is their content's hash), so neither do their
        plots: keep the last PLOT_CACHE drawn."""
        with plots_lock:
            data = plots.get(key)
            if data is not None:
                plots.move_to_end(key)
        if data is None:
            data = draw()
            with plots_lock:
                plots[key] = data
                while len(plots) > PLOT_CACHE:
                    plots.popitem(last=False)
        return Response(data, media_type="image/png",
                        headers={"Cache-Control": "public, max-age=3600"})

    def csv_response(text: str, name: str) -> Response:
        return Response(text, media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'inline; filename="{name}"'})

    # --- pages ---------------------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse)
    def index():
        return pages.index()

    @app.get("/board/{scale}/{track}/", response_class=HTMLResponse)
    def board(scale: str, track: str):
        board_or_404(scale, track)
        return pages.board(scale, track)

    @app.get("/board/{scale}/{track}/ranking.csv")
    def board_csv(scale: str, track: str):
        return csv_response(board_or_404(scale, track).to_csv(), f"ranking-{scale}-{track}.csv")

    @app.get("/board/{scale}/{track}/ranking.json")
    @app.get("/api/boards/{scale}/{track}")
    def board_json(scale: str, track: str):
        return board_or_404(scale, track).to_json()

    @app.get("/submission/{entry_id}/", response_class=HTMLResponse)
    def entry_page(entry_id: str, baseline: str | None = None):
        entry = entry_or_404(entry_id)
        return pages.entry(entry, baseline_for(entry, baseline))

    @app.get("/submission/{entry_id}/tasks.csv")
    def entry_csv(entry_id: str, baseline: str | None = None):
        entry = entry_or_404(entry_id)
        table = views.task_table(store, entry, baseline_for(entry, baseline))
        return csv_response(table.to_csv(), f"tasks-{entry.id}.csv")

    @app.get("/submission/{entry_id}/tasks.json")
    def entry_tasks_json(entry_id: str, baseline: str | None = None):
        entry = entry_or_404(entry_id)
        return views.task_table(store, entry, baseline_for(entry, baseline)).to_json()

    @app.get("/submission/{entry_id}/delta.png")
    def entry_png(entry_id: str, baseline: str | None = None):
        entry = entry_or_404(entry_id)
        base = baseline_for(entry, baseline)
        if base is None:
            raise HTTPException(404, "no baseline to compare with")
        return cached_png(("delta", entry.id, base.id),
                          lambda: views.delta_png(store, entry, base))

    @app.get("/submission/{entry_id}/files/{dest:path}")
    def entry_file(entry_id: str, dest: str):
        entry = entry_or_404(entry_id)
        path = store.file_path(entry.id, dest)
        if path is None or not path.is_file():
            raise HTTPException(404, f"no file {dest!r} in entry {entry_id!r}")
        return FileResponse(path, media_type="application/octet-stream",
                            filename=Path(dest).name)

    @app.get("/compare/", include_in_schema=False)
    def compare_form(ids: list[str] | None = Query(None)):  # noqa: B008
        if not ids:
            raise HTTPException(400, f"choose 2 to {views.MAX_COMPARE} entries to compare")
        entries = compare_or_error(ids)
        return RedirectResponse("/" + views.compare_url([e.id for e in entries]), 303)

    def _compare_ids(spec: str) -> list:
        return compare_or_error(spec.split("+"))

    @app.get("/compare/{spec}/", response_class=HTMLResponse)
    def compare(spec: str):
        return pages.compare(_compare_ids(spec))

    @app.get("/compare/{spec}/compare.csv")
    def compare_csv(spec: str):
        entries = _compare_ids(spec)
        return csv_response(views.compare_table(store, entries).to_csv(), "compare.csv")

    @app.get("/compare/{spec}/compare.json")
    def compare_json(spec: str):
        return views.compare_table(store, _compare_ids(spec)).to_json()

    @app.get("/compare/{spec}/compare.png")
    def compare_png(spec: str):
        entries = _compare_ids(spec)
        return cached_png(("compare", *(e.id for e in entries)),
                          lambda: views.compare_png(store, entries))

    # --- API -----------------------------------------------------------------------------------
    @app.get("/api/boards")
    def api_boards(request: Request):
        return {"settings": store.settings.to_json(),
                "boards": [{"scale": s, "track": t, "entries": n,
                            "url": base_url(request) + views.board_url(s, t)}
                           for s, t, n in store.boards()]}

    @app.get("/api/submissions/{entry_id}")
    def api_entry(entry_id: str, baseline: str | None = None):
        entry = entry_or_404(entry_id)
        return views.entry_json(store, entry, baseline_for(entry, baseline))

    @app.get("/api/compare")
    def api_compare(ids: list[str] | None = Query(None)):  # noqa: B008
        return views.compare_table(store, compare_or_error(ids or [])).to_json()

    # --- uploads -------------------------------------------------------------------------------
    async def receive(stream, declared: str | None) -> tuple[Path, str]:
        """Write the body to a scratch file within the size limit; (path, sha256)."""
        if declared is not None and declared.isdigit() and int(declared) > limits.max_bytes:
            raise Rejected([f"the upload is {int(declared):,} bytes; this board accepts at "
                            f"most {limits.max_bytes:,}"], status=413)
        store.incoming.mkdir(parents=True, exist_ok=True)
        path = store.incoming / f"{uuid.uuid4().hex}.upload"
        digest, size = hashlib.sha256(), 0
        try:
            with open(path, "wb") as f:
                async for chunk in stream:
                    size += len(chunk)
                    if size > limits.max_bytes:
                        raise Rejected([f"the upload exceeds {limits.max_bytes:,} bytes, this "
                                        "board's limit"], status=413)
                    digest.update(chunk)
                    f.write(chunk)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return path, digest.hexdigest()

    async def ingest(path: Path, submitter: str):
        try:
            return await run_in_threadpool(receive_archive, store, path, submitter, limits)
        finally:
            path.unlink(missing_ok=True)

    def accepted_json(request: Request, acc) -> JSONResponse:
        return JSONResponse({"id": acc.entry.id, "created": acc.created,
                             "url": base_url(request) + views.entry_url(acc.entry.id),
                             "aggregates": acc.entry.groups},
                            status_code=201 if acc.created else 200)

    @app.post("/api/submissions")
    async def api_upload(request: Request):
        submitter = store.check_token(_bearer(request.headers.get("authorization")))
        if submitter is None:
            return JSONResponse({"error": "a valid upload token is needed (Authorization: "
                                          "Bearer TOKEN; ask the board's admin for one)"},
                                status_code=401, headers={"WWW-Authenticate": "Bearer"})
        try:
            path, digest = await receive(request.stream(), request.headers.get("content-length"))
            expected = request.headers.get("x-archive-sha256")
            if expected and expected.lower() != digest:
                path.unlink(missing_ok=True)
                raise Rejected([f"the archive's sha256 is {digest}, the client sent {expected}: "
                                "it was damaged in transit; send it again"], status=400)
            acc = await ingest(path, submitter)
        except Rejected as e:
            return JSONResponse({"error": "the submission was not accepted",
                                 "problems": e.problems}, status_code=e.status)
        log.info("%s submission %s (%s) from token %s", "new" if acc.created else "repeated",
                 acc.entry.id, acc.entry.method, submitter)
        return accepted_json(request, acc)

    @app.get("/submit/", response_class=HTMLResponse)
    def submit_page():
        return pages.submit()

    @app.post("/submit/", response_class=HTMLResponse)
    async def submit_form(request: Request):
        declared = request.headers.get("content-length")
        if declared is None or not declared.isdigit():
            return HTMLResponse(pages.submit(["send the form with a Content-Length"]), 411)
        if int(declared) > limits.max_bytes + FORM_OVERHEAD:
            return HTMLResponse(pages.submit([f"the upload is {int(declared):,} bytes; this "
                                              f"board accepts at most {limits.max_bytes:,}"]),
                                413)
        try:
            form = await request.form(max_files=1, max_fields=4)
        except Exception:  # malformed multipart
            return HTMLResponse(pages.submit(["the form could not be read"]), 400)
        token, upload = form.get("token"), form.get("archive")
        submitter = store.check_token(token if isinstance(token, str) else None)
        if submitter is None:
            return HTMLResponse(pages.submit(["the token is not valid"]), 401)
        if upload is None or isinstance(upload, str):
            return HTMLResponse(pages.submit(["choose an archive to upload"]), 400)

        async def chunks():
            while chunk := await upload.read(1 << 20):
                yield chunk

        try:
            path, _ = await receive(chunks(), None)
            acc = await ingest(path, submitter)
        except Rejected as e:
            return HTMLResponse(pages.submit(e.problems), e.status)
        finally:
            await upload.close()
        return HTMLResponse(pages.submit(accepted=acc), 201 if acc.created else 200)

    @app.get("/robots.txt", response_class=PlainTextResponse)
    def robots():
        return "User-agent: *\nDisallow: /api/\nDisallow: /submission/*/files/\n"

    return app


def serve(folder: str | Path, host: str = "127.0.0.1", port: int = 8000,
          options: ServerOptions = ServerOptions(), settings: Any = None,
          log_level: str = "info") -> None:
    """``leaderboard serve``: open (or create) the board and run uvicorn until Ctrl-C."""
    from datacomp_sci.core.deps import require

    uvicorn = require("uvicorn")
    store = Store.open(folder, settings)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    app = create_app(store, options)
    uvicorn.run(app, host=host, port=port, log_level=log_level, server_header=False,
                proxy_headers=False)
