"""A tiny stand-in for the Hugging Face hub on 127.0.0.1, for download tests without a network.

It serves exactly what huggingface_hub's ``snapshot_download`` / ``hf_hub_download`` ask for
(huggingface_hub 1.x/2.x):

* ``GET  /api/models/{repo}[/revision/{rev}]`` repo info: ``sha`` (the commit) and ``siblings``
  (file names; sizes too, as the hub answers ``?blobs=True``)
* ``GET  /api/models/{repo}/tree/{rev}``      the recursive file listing (one page, no ``Link``)
* ``HEAD /{repo}/resolve/{rev}/{file}``       ``X-Repo-Commit``, ``ETag``, ``Content-Length``
* ``GET  /{repo}/resolve/{rev}/{file}``       the bytes

Errors use the hub's ``X-Error-Code`` header (``RepoNotFound``, ``EntryNotFound``,
``GatedRepo``), which is how huggingface_hub tells them apart.  Any other URL (e.g. the agent
registry huggingface_hub looks up) is a plain 404.  A file named in ``drop`` is cut off
mid-body (then every retry is dropped before any response), to act out a lost connection.
The server stops itself after ``lifetime`` seconds if a test forgets to.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

_API = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)(?:/(?P<kind>revision|tree)/(?P<rev>[^/]+))?$")
_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")


@dataclass
class FakeRepo:
    files: dict[str, bytes]
    sha: str
    gated: bool = False

    @classmethod
    def from_folder(cls, folder: Path, extra: dict[str, bytes] | None = None, gated: bool = False) -> "FakeRepo":
        files = {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir()) if p.is_file()}
        files.update(extra or {})
        return cls.from_files(files, gated=gated)

    @classmethod
    def from_files(cls, files: dict[str, bytes], gated: bool = False) -> "FakeRepo":
        digest = hashlib.sha1()
        for name in sorted(files):
            digest.update(name.encode() + b"\0" + files[name])
        return cls(dict(files), digest.hexdigest(), gated)


@dataclass
class FakeHub:
    repos: dict[str, FakeRepo] = field(default_factory=dict)
    drop: set[str] = field(default_factory=set)
    log: list[tuple[str, str]] = field(default_factory=list)
    lifetime: float = 60.0

    def start(self) -> "FakeHub":
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_HEAD(self):
                hub._handle(self, head=True)

            def do_GET(self):
                hub._handle(self, head=False)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        self._timer = threading.Timer(self.lifetime, self.stop)
        self._timer.daemon = True
        self._timer.start()
        self.running = True
        return self

    def stop(self) -> None:
        if getattr(self, "running", False):
            self.running = False
            self._timer.cancel()
            self.server.shutdown()
            self.server.server_close()

    def requests(self, method: str | None = None, contains: str = "") -> list[str]:
        return [p for m, p in self.log if (method is None or m == method) and contains in p]

    # -- request handling ---------------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler, head: bool) -> None:
        path = unquote(urlsplit(h.path).path)
        self.log.append(("HEAD" if head else "GET", path))
        m = _API.match(path)
        if m and not head:
            repo = self.repos.get(m["repo"])
            if repo is None or (m["rev"] or "main") not in ("main", repo.sha):
                return self._error(h, 404, "RepoNotFound" if repo is None else "RevisionNotFound", head)
            if m["kind"] != "tree":
                siblings = [{"rfilename": n, "size": len(b)} for n, b in sorted(repo.files.items())]
                body = {"id": m["repo"], "modelId": m["repo"], "sha": repo.sha, "private": False,
                        "gated": "manual" if repo.gated else False, "siblings": siblings}
            else:
                body = [{"type": "file", "path": n, "size": len(b), "oid": hashlib.sha1(b).hexdigest()}
                        for n, b in sorted(repo.files.items())]
            return self._send(h, 200, json.dumps(body).encode(), {"Content-Type": "application/json"}, head)
        m = _RESOLVE.match(path)
        if m:
            repo = self.repos.get(m["repo"])
            if repo is None:
                return self._error(h, 404, "RepoNotFound", head)
            if m["rev"] not in ("main", repo.sha):
                return self._error(h, 404, "RevisionNotFound", head)
            if repo.gated:
                return self._error(h, 403, "GatedRepo", head, {"X-Repo-Commit": repo.sha})
            data = repo.files.get(m["file"])
            if data is None:
                return self._error(h, 404, "EntryNotFound", head, {"X-Repo-Commit": repo.sha})
            headers = {"X-Repo-Commit": repo.sha, "ETag": f'"{hashlib.sha256(data).hexdigest()}"',
                       "Content-Type": "application/octet-stream", "Accept-Ranges": "bytes"}
            if not head and m["file"] in self.drop:
                return self._drop(h, data, headers)
            return self._send(h, 200, data, headers, head)
        if path.startswith("/files/") and not head:  # plain URL downloads (torch hub)
            data = self.repos.get("files", FakeRepo({}, "")).files.get(path[len("/files/"):])
            if data is None:
                return self._send(h, 404, b"not found", {}, head)
            return self._send(h, 200, data, {"Content-Type": "application/octet-stream"}, head)
        return self._send(h, 404, b'{"error": "not found"}', {"Content-Type": "application/json"}, head)

    def _send(self, h, status: int, body: bytes, headers: dict[str, str], head: bool) -> None:
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if not head:
            h.wfile.write(body)

    def _error(self, h, status: int, code: str, head: bool, extra: dict[str, str] | None = None) -> None:
        headers = {"X-Error-Code": code, "X-Error-Message": code, "Content-Type": "application/json", **(extra or {})}
        self._send(h, status, json.dumps({"error": code}).encode(), headers, head)

    def _drop(self, h, data: bytes, headers: dict[str, str]) -> None:
        """Half the body then a closed socket; a retry (Range request) is closed before any response."""
        if "Range" not in h.headers:
            h.send_response(200)
            for k, v in headers.items():
                h.send_header(k, v)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data[: len(data) // 2])
            h.wfile.flush()
        h.close_connection = True
        try:
            import socket

            h.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
