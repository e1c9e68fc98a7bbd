"""`compose studio`'s web server: the page, its static files and a small JSON/MIDI API over
``Composer.generate`` (the same request type and generation path as the CLI).

    POST /api/generate   JSON of GenerateRequest keywords + rank -> one MIDI file (audio/midi)
    GET  /api/options    keys, meters, instruments, the model's choices, limits and defaults
    GET  /               the page;  GET /static/{name}: its files, by exact name only

Every bad value is a JSON 400 ``{"error": "<one line>"}`` (the CLI's message), never a traceback.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import secrets
import tempfile
import threading
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from composer.errors import ComposerError, RequestError
from composer.files import printable
from composer.generate import request as rq
from composer.generate.api import Composer, Result

if TYPE_CHECKING:
    from composer.music.melody import Melody

STATIC = Path(__file__).resolve().parent / "static"
MAX_PRIME_BYTES = 2 * 1024 * 1024  # an uploaded prime, decoded
MAX_BODY_BYTES = MAX_PRIME_BYTES * 4 // 3 + 64 * 1024  # its base64 and the other keys
SEED_DRAW = 1_000_000  # a seed drawn for a request without one (like Composer.generate's own)
HEADERS = ("X-Bits-Per-Note", "X-Key", "X-Time-Signature", "X-Seed", "X-Bars", "X-Tempo", "X-Rank", "X-Num",
           "X-Prime-Bars", "Content-Disposition")
_INT, _NUM, _STR, _BOOL = "a whole number", "a number", "text", "true or false"
# JSON type of each key the API takes (null is allowed where the request's default is None).
KINDS = {"bars": _INT, "num": _INT, "seed": _INT, "key": _STR, "time_signature": _STR, "temperature": _NUM,
         "top_k": _INT, "top_p": _NUM, "tempo": _NUM, "program": "a number or a name", "pitch_range": "text such as C4-G5",
         "prime": "base64 of a MIDI file", "form": _STR, "section_bars": _INT, "vary": _BOOL, "max_copy": _INT,
         "prime_bars": _INT, "track": "a number or a name", "chords": _STR, "accompany": _BOOL, "style": _STR,
         "chords_program": "a number or a name", "bass_program": "a number or a name", "rank": _INT}
_NULLABLE = {f.name for f in fields(rq.GenerateRequest) if f.default is None}


class TooLarge(RequestError):
    """An upload over ``MAX_PRIME_BYTES`` (HTTP 413)."""


def _fits(kind: str, value: object) -> bool:
    """Whether a JSON value has the type a key takes."""
    if kind == _INT:
        return type(value) is int
    if kind == _NUM:
        return type(value) in (int, float)
    if kind == _BOOL:
        return type(value) is bool
    if kind == KINDS["program"]:
        return type(value) in (int, str)
    if kind == KINDS["pitch_range"]:
        return type(value) is str or (type(value) is list and len(value) == 2 and all(type(v) is int for v in value))
    return type(value) is str


def _show(value: object) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def read_prime(text: str, track: str | int | None = None) -> Melody:
    """The melody of a base64 MIDI file (a data URL's prefix allowed), read by the reader of --prime
    (``track``: its track by name or number, as --track)."""
    from composer.music.midi_io import read_melody

    data = text.split(",", 1)[1] if text.startswith("data:") else text
    if len(data) > MAX_PRIME_BYTES * 4 // 3 + 4:
        raise TooLarge(f"prime is larger than {MAX_PRIME_BYTES // (1024 * 1024)} MB: upload a shorter MIDI file")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError("prime is not base64: send the MIDI file's bytes in base64") from None
    if len(raw) > MAX_PRIME_BYTES:
        raise TooLarge(f"prime is larger than {MAX_PRIME_BYTES // (1024 * 1024)} MB: upload a shorter MIDI file")
    with tempfile.TemporaryDirectory(prefix="composer-prime-") as folder:
        path = Path(folder) / "prime.mid"
        path.write_bytes(raw)
        try:
            return read_melody(path, track)
        except ComposerError as e:  # name the upload, not the temporary folder
            raise RequestError(str(e).replace(str(path), "prime")) from None


def parse(body: object) -> tuple[rq.GenerateRequest, int]:
    """(request, rank) from a decoded JSON body; raises RequestError naming the bad key or value."""
    if not isinstance(body, dict):
        raise RequestError(f"the body must be a JSON object of generate options, got {_show(body)}")
    unknown = sorted(set(body) - set(KINDS))
    if unknown:
        raise RequestError(f"unknown key {unknown[0]!r}: use {', '.join(KINDS)}")
    for name, value in body.items():
        if not (value is None and (name in _NULLABLE or name == "rank")) and not _fits(KINDS[name], value):
            raise RequestError(f"{name} must be {KINDS[name]}, got {_show(value)}")
        if type(value) is float and not math.isfinite(value):
            raise RequestError(f"{name} must be a finite number, got {value}")
    options = {k: v for k, v in body.items() if k != "rank" and v is not None}
    if isinstance(options.get("pitch_range"), list):
        options["pitch_range"] = tuple(options["pitch_range"])
    if "prime" in options:  # read here, with its track (a request's track is for a prime file)
        options["prime"] = read_prime(options["prime"], rq.parse_track(options.pop("track", None)))
    options.setdefault("seed", secrets.randbelow(SEED_DRAW))  # drawn here, so the page can repeat it
    req = rq.GenerateRequest(**options)
    rank = body.get("rank")
    rank = 1 if rank is None else rank
    if not 1 <= rank <= req.num:
        raise RequestError(f"rank must be between 1 and num ({req.num}), got {rank}")
    return req, rank


def options(composer: Composer) -> dict:
    """What the page offers, with the CLI's defaults and limits (all read from the request module)."""
    from pretty_midi import INSTRUMENT_MAP

    from composer.music.keys import Key
    from composer.music.meter import supported_meters

    defaults = {f.name: f.default for f in fields(rq.GenerateRequest)}
    return {
        "keys": [Key.from_index(i).name for i in range(24)],
        "meters": [str(m) for m in supported_meters()],
        "instruments": list(INSTRUMENT_MAP),
        "forms": list(rq.PLAN_FORMS),
        "model": {"name": composer.bundle.name, "keys": [k.name for k in composer.keys],
                  "meters": [str(m) for m in composer.meters], "default_form": composer.default_form},
        "defaults": {**defaults, "rank": 1},
        "limits": {"MAX_BARS": rq.MAX_BARS, "MAX_NUM": rq.MAX_NUM, "MAX_MELODY_BARS": rq.MAX_MELODY_BARS,
                   "MAX_PIECE_BARS": rq.MAX_PIECE_BARS, "MAX_SEED": rq.MAX_SEED, "MIN_TEMPERATURE": rq.MIN_TEMPERATURE,
                   "TEMPO_RANGE": list(rq.TEMPO_RANGE), "DEFAULT_BARS": rq.DEFAULT_BARS, "MAX_PRIME_BYTES": MAX_PRIME_BYTES},
        "keywords": list(KINDS),
    }


def midi_response(result: Result, num: int, prime: bool) -> Response:
    """The MIDI file, as ``Result.to_midi_bytes()``, with what the page shows in headers."""
    mel = result.melody
    name = result.file_stem("prime" if prime else None, num) + ".mid"
    headers = {"X-Bits-Per-Note": f"{result.bits_per_note:.4f}", "X-Key": mel.last_key.name, "X-Time-Signature": str(mel.last_meter),
               "X-Seed": str(result.seed), "X-Bars": str(mel.n_bars), "X-Tempo": f"{mel.tempo:g}", "X-Rank": str(result.rank),
               "X-Num": str(num), "X-Prime-Bars": str(result.prime_bars), "Content-Disposition": f'attachment; filename="{name}"',
               "Access-Control-Expose-Headers": ", ".join(HEADERS)}
    return Response(result.to_midi_bytes(), media_type="audio/midi", headers=headers)


def _error(status: int, message: object) -> JSONResponse:
    """A JSON error of one line (control characters shown as '?', like the CLI's)."""
    text = "; ".join(line.strip() for line in str(message).splitlines() if line.strip()) or "failed"
    return JSONResponse({"error": printable(text)}, status_code=status)


async def _body(request: Request) -> bytes | None:
    """The request's body, or None once it passes ``MAX_BODY_BYTES`` (not read further)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(composer: Composer) -> Starlette:
    """The studio's web app around one loaded model; requests take turns on it (one lock)."""
    lock = threading.Lock()
    files = {p.name: p for p in STATIC.iterdir() if p.is_file()} if STATIC.is_dir() else {}  # the allow-list

    def run(body: object) -> Response:
        req, rank = parse(body)
        with lock:  # the model and torch's thread setting are shared
            results = composer.generate(req)
        return midi_response(results[rank - 1], req.num, req.prime is not None)

    def static_file(name: str) -> Response:
        path = files.get(name)
        if path is None:
            return _error(404, f"not found: {name}")
        return FileResponse(path)

    async def index(request: Request) -> Response:
        return static_file("index.html")

    async def static(request: Request) -> Response:
        return static_file(request.path_params["name"])

    async def api_options(request: Request) -> Response:
        return JSONResponse(options(composer))

    async def api_generate(request: Request) -> Response:
        raw = await _body(request)
        if raw is None:
            return _error(413, f"the request is larger than {MAX_BODY_BYTES:,} bytes: the prime may be at most "
                               f"{MAX_PRIME_BYTES // (1024 * 1024)} MB")
        try:
            body = json.loads(raw) if raw.strip() else {}
        except (ValueError, RecursionError) as e:
            return _error(400, f"the body is not valid JSON: {e}")
        try:
            return await run_in_threadpool(run, body)
        except TooLarge as e:
            return _error(413, e)
        except ComposerError as e:  # a bad value, or a prime that cannot be read: the client's to fix
            return _error(400, e)
        except Exception as e:  # noqa: BLE001 (the page gets one line, not a traceback)
            return _error(500, f"generation failed: {type(e).__name__}: {e}")

    async def not_found(request: Request, exc: Exception) -> Response:
        return _error(getattr(exc, "status_code", 404), getattr(exc, "detail", "not found"))

    routes = [Route("/", index), Route("/static/{name}", static), Route("/api/options", api_options),
              Route("/api/generate", api_generate, methods=["POST"])]
    return Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})
