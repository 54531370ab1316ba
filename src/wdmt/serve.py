"""``wdmt serve``: a local web page to look at heat maps instead of reading files.

The page (``serve_page.html``, one file: no script, style or font from the internet) sends each dropped photograph
to ``POST /api/score`` as the request body; the answer is JSON with the score, the decision, the thresholds, the
photograph as a JPEG and the map as an 8-bit PNG at the photograph's preview size (0-255 for 0 to ``map_max``), so
the page can colour the map, move the threshold, draw lesion outlines and zoom without asking again.

Safety: binds 127.0.0.1 unless told otherwise; refuses bodies over ``max_mb``; decodes in memory and writes nothing
to disk; every failure is a JSON ``{"error": ...}`` with one line of text (never a stack trace), and the server
keeps serving. Requests are scored one at a time (one model, one lock).
"""

from __future__ import annotations

import base64
import io
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from wdmt.errors import WdmtError
from wdmt.io import decode_image

PAGE = Path(__file__).with_name("serve_page.html")
PREVIEW = 1024  # longest side of the photograph and map sent to the page


class Scorer:
    """One photograph (RGB uint8) -> map in the photograph's own frame, drawn at a given size, and score;
    thresholds to decide with. Any engine ``wdmt predict`` has: a run (default: the shipped model) on ``device``,
    or an exported ONNX model."""

    def __init__(self, run: str | Path | None = None, onnx: str | Path | None = None,
                 backend: str = "onnxruntime", device: str = "auto") -> None:
        from wdmt.archive import EngineSpec

        self.lock = threading.Lock()
        self.engine = EngineSpec(run=None if run is None else str(run), onnx=None if onnx is None else str(onnx),
                                 backend=backend, device=device).build()
        self.thresholds, self.name = self.engine.thresholds, self.engine.source.name

    def score(self, rgb: np.ndarray, name: str, size: tuple[int, int]) -> tuple[np.ndarray, float]:
        from wdmt.preprocess import prepare

        with self.lock:
            prep = prepare(rgb, self.engine.preprocess, source=name)
            amap, score = self.engine.score([prep])[0]
            return prep.geometry.to_frame(amap, (rgb.shape[1], rgb.shape[0]), size), score


def _png(arr: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def _jpeg(rgb: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=90)
    return base64.b64encode(buf.getvalue()).decode()


def score_upload(scorer: Scorer, data: bytes, name: str) -> dict[str, Any]:
    """What the page shows for one uploaded photograph."""
    rgb = decode_image(data, name)
    h, w = rgb.shape[:2]
    f = min(1.0, PREVIEW / max(h, w))
    size = (max(1, round(w * f)), max(1, round(h * f)))
    big, score = scorer.score(rgb, name, size)
    photo = np.asarray(Image.fromarray(rgb).resize(size, Image.BILINEAR))
    t = scorer.thresholds
    top = 2 * float(t["pixel_threshold"])  # the overlay scale wdmt predict uses
    level = np.clip(np.round(big / max(top, 1e-6) * 255), 0, 255).astype(np.uint8)
    return {"name": name, "score": float(score), "image_threshold": float(t["image_threshold"]),
            "decision": "abnormal" if score >= t["image_threshold"] else "normal",
            "pixel_threshold": float(t["pixel_threshold"]), "map_max": top, "rule": t.get("rule"),
            "width": size[0], "height": size[1], "photo": _jpeg(photo), "map": _png(level), "model": scorer.name}


def make_handler(scorer: Scorer, max_bytes: int) -> type[BaseHTTPRequestHandler]:
    page = PAGE.read_bytes()

    class Handler(BaseHTTPRequestHandler):
        server_version = "wdmt"

        def log_message(self, fmt: str, *args: Any) -> None:  # one quiet line per request on stderr
            sys.stderr.write(f"wdmt serve: {self.command} {self.path} {args[1] if len(args) > 1 else ''}\n")

        def _send(self, code: int, body: bytes, kind: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def _json(self, code: int, obj: dict[str, Any]) -> None:
            self._send(code, json.dumps(obj).encode(), "application/json")

        def _drain(self, size: int) -> None:
            while size > 0:
                chunk = self.rfile.read(min(size, 1 << 20))
                if not chunk:
                    break
                size -= len(chunk)

        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            if self.path in ("/", "/index.html"):
                self._send(200, page, "text/html; charset=utf-8")
            elif self.path == "/api/info":
                self._json(200, {"model": scorer.name, "max_mb": max_bytes / 1e6, **{
                    k: scorer.thresholds.get(k) for k in ("pixel_threshold", "image_threshold", "rule")}})
            else:
                self._json(404, {"error": f"no such page: {self.path}"})

        def do_POST(self) -> None:  # noqa: N802
            if self.path != "/api/score":
                return self._json(404, {"error": f"no such endpoint: {self.path}"})
            name = Path(self.headers.get("X-Filename") or "upload").name
            size = int(self.headers.get("Content-Length") or 0)
            if size > max_bytes:
                self._drain(size)  # read and drop it (never kept): a client cut off mid-upload sees no message
                return self._json(413, {"error": f"{name}: {size / 1e6:.1f} MB is over the "
                                                 f"{max_bytes / 1e6:.0f} MB limit"})
            try:
                self._json(200, score_upload(scorer, self.rfile.read(size), name))
            except WdmtError as e:
                self._json(400, {"error": str(e)})
            except Exception as e:  # noqa: BLE001 - the server stays up; the page gets one line
                sys.stderr.write(f"wdmt serve: {name}: {type(e).__name__}: {e}\n")
                self._json(500, {"error": f"{name}: could not be scored ({type(e).__name__})"})
            return None

    return Handler


def make_server(scorer: Scorer, host: str = "127.0.0.1", port: int = 8765, max_mb: float = 25.0) -> ThreadingHTTPServer:
    return ThreadingHTTPServer((host, port), make_handler(scorer, int(max_mb * 1e6)))
