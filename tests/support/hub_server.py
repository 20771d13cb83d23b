"""A local Hugging Face Hub for tests: the HTTP calls huggingface_hub 2.4 makes, answered from memory.

Standard library only. Start it, point `HF_ENDPOINT` at `server.url` before huggingface_hub is imported, and the
real client (`HfApi`, `push_to_hub`, `from_pretrained`, `AutoTokenizer`) runs over real HTTP against it.

What it speaks (see ../shared/notes/hub-api.md and the client sources in site-packages/huggingface_hub):
- `GET /api/whoami-v2`, `POST /api/repos/create`, `DELETE /api/repos/delete`, `POST /api/validate-yaml`
- `/api/{models,datasets,spaces}/{namespace}/{name}`: info, `revision/{rev}`, `tree/{rev}[/{path}]`,
  `paths-info/{rev}`, `refs`, `commits/{rev}`, `preupload/{rev}`, `commit/{rev}`, `branch/{branch}`
- `HEAD`/`GET /[{datasets,spaces}/]{namespace}/{name}/resolve/{rev}/{path}`

Every file is uploaded "regular" (base64 inside the commit NDJSON), so neither LFS nor xet is ever involved.
Users are given as `{token: user name}`. A private repo is a 404 for everyone but its owner, an unknown token is a
401 on every call, and writing outside one's own namespace is a 403, as on the real Hub.

`stop_on_next_commit = True` makes the server read the next commit request, drop the connection without an answer
and stop listening: the client sees the Hub disappear in the middle of a push.
"""

import base64
import hashlib
import itertools
import json
import re
import socket
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit


REPO_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
URL_PREFIXES = {"model": "", "dataset": "datasets/", "space": "spaces/"}

# License ids the Hub accepts in card metadata (a subset of https://huggingface.co/docs/hub/repositories-licenses).
KNOWN_LICENSES = {
    "apache-2.0",
    "mit",
    "bsd-2-clause",
    "bsd-3-clause",
    "gpl-2.0",
    "gpl-3.0",
    "lgpl-3.0",
    "agpl-3.0",
    "mpl-2.0",
    "cc0-1.0",
    "cc-by-4.0",
    "cc-by-sa-4.0",
    "cc-by-nc-4.0",
    "cc-by-nc-sa-4.0",
    "cc-by-nd-4.0",
    "openrail",
    "creativeml-openrail-m",
    "bigscience-openrail-m",
    "llama2",
    "unlicense",
    "other",
    "unknown",
}


def git_blob_oid(content: bytes) -> str:
    """The git object id of a file, as the Hub reports it for regular files."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class HubError(Exception):
    """An HTTP error answer, with the `X-Error-Code` the client uses to pick its exception class."""

    def __init__(self, status: int, message: str, error_code: str | None = None, extra: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.error_code = status, message, error_code
        self.extra = extra or {}  # more fields of the JSON answer


@dataclass
class Commit:
    oid: str
    parent: str | None
    files: dict[str, bytes]  # the whole tree at this commit: path -> content
    title: str
    message: str
    author: str
    date: str


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    owner: str
    private: bool
    created_at: str
    branches: dict[str, str] = field(default_factory=dict)  # branch name -> commit oid
    commits: dict[str, Commit] = field(default_factory=dict)

    def resolve(self, revision: str) -> Commit:
        """A branch name or a full commit oid -> the commit, or a RevisionNotFound 404."""
        oid = self.branches.get(revision, revision)
        if oid not in self.commits:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return self.commits[oid]


class HubServer:
    """A threaded HTTP server holding repos in memory. Use as `with HubServer({...}) as hub:` or start()/stop()."""

    def __init__(self, tokens: dict[str, str], host: str = "127.0.0.1", port: int = 0):
        self.tokens = dict(tokens)  # token -> user name
        self.repos: dict[tuple[str, str], Repo] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request, for tests to inspect
        self.stop_on_next_commit = False
        self._lock = threading.Lock()
        self._commit_counter = itertools.count()
        self._httpd = _HTTPServer((host, port), _Handler)
        self._httpd.hub = self
        self._thread: threading.Thread | None = None
        self.url = f"http://{host}:{self._httpd.server_address[1]}"

    # -- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> "HubServer":
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and cut every open connection, even one in the middle of a request."""
        if self._thread is None:
            return
        self._httpd.shutdown()
        self._httpd.close_open_connections()
        self._httpd.server_close()
        self._thread = None

    def __enter__(self) -> "HubServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget every repo and request (between tests sharing one server)."""
        with self._lock:
            self.repos.clear()
            self.requests.clear()
            self.stop_on_next_commit = False

    # -- inspection helpers for tests ------------------------------------------------------------------------
    def repo(self, repo_id: str, repo_type: str = "model") -> Repo:
        return self.repos[(repo_type, repo_id)]

    def files(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> dict[str, bytes]:
        return dict(self.repo(repo_id, repo_type).resolve(revision).files)

    # -- repo operations -------------------------------------------------------------------------------------
    def create_repo(self, repo_type: str, repo_id: str, owner: str, private: bool) -> Repo:
        with self._lock:
            if (repo_type, repo_id) in self.repos:
                # The Hub's 409 carries the repo url: `create_repo(exist_ok=True)` returns it.
                raise HubError(
                    409,
                    f"You already created this {repo_type} repo",
                    extra={"url": f"{self.url}/{URL_PREFIXES[repo_type]}{repo_id}"},
                )
            repo = Repo(repo_type=repo_type, repo_id=repo_id, owner=owner, private=private, created_at=_now())
            # Like the Hub, a new repo starts with one commit holding a .gitattributes file.
            gitattributes = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
            initial = self._new_commit(repo, None, {".gitattributes": gitattributes}, "initial commit", "", owner)
            repo.branches["main"] = initial.oid
            self.repos[(repo_type, repo_id)] = repo
            return repo

    def _new_commit(
        self, repo: Repo, parent: str | None, files: dict[str, bytes], title: str, message: str, author: str
    ) -> Commit:
        tree = sorted((path, git_blob_oid(content)) for path, content in files.items())
        seed = json.dumps([parent, tree, title, message, author, next(self._commit_counter)]).encode()
        commit = Commit(
            oid=hashlib.sha1(seed).hexdigest(),
            parent=parent,
            files=files,
            title=title,
            message=message,
            author=author,
            date=_now(),
        )
        repo.commits[commit.oid] = commit
        return commit


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, *args, **kwargs):
        self._open_connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def process_request(self, request, client_address):
        with self._connections_lock:
            self._open_connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self._connections_lock:
            self._open_connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address):
        pass  # a client that went away, or a connection cut by stop(): nothing worth printing in test output

    def close_open_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._open_connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by the other side


# Routes under /api/{type}s/{namespace}/{name}/...: (HTTP method, first sub-path segment) -> handler method name.
_REPO_ROUTES = {
    ("GET", None): "repo_info",
    ("GET", "revision"): "repo_info",
    ("GET", "tree"): "tree",
    ("POST", "paths-info"): "paths_info",
    ("GET", "refs"): "refs",
    ("GET", "commits"): "commits",
    ("POST", "preupload"): "preupload",
    ("POST", "commit"): "commit",
    ("POST", "branch"): "create_branch",
    ("DELETE", "branch"): "delete_branch",
}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the client expects
    server_version = "hf-seq-test-hub/1.0"

    @property
    def hub(self) -> HubServer:
        return self.server.hub

    def log_message(self, format, *args):  # quiet: tests read `hub.requests` instead
        pass

    def do_GET(self):
        self._dispatch("GET")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_DELETE(self):
        self._dispatch("DELETE")

    # -- plumbing --------------------------------------------------------------------------------------------
    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        self.query = parse_qs(url.query)
        # Always read the body, even for an error answer: an unread body garbles the next request on this connection.
        self.body = self._read_body()
        self.hub.requests.append((method, url.path))
        segments = [unquote(segment) for segment in url.path.split("/")[1:]]
        try:
            self._route(method, segments)
        except HubError as error:
            self._send_error(error)
        except _DropConnection:
            self.close_connection = True
        except Exception as error:  # a bug in this server: answer 500 so the test shows it
            self._send_error(HubError(500, f"test hub internal error: {error!r}"))

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                chunk = self.rfile.read(size)
                self.rfile.readline()
                if size == 0:
                    return b"".join(chunks)
                chunks.append(chunk)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(
        self,
        status: int,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, payload, status: int = 200) -> None:
        self._send(status, json.dumps(payload).encode())

    def _send_error(self, error: HubError) -> None:
        headers = {"X-Error-Message": error.message}
        if error.error_code:
            headers["X-Error-Code"] = error.error_code
        self._send(error.status, json.dumps({"error": error.message, **error.extra}).encode(), headers)

    def _json_body(self) -> dict:
        try:
            return json.loads(self.body or b"{}")
        except json.JSONDecodeError as error:
            raise HubError(400, f"request body is not JSON: {error}")

    # -- authentication --------------------------------------------------------------------------------------
    def _caller(self) -> str | None:
        """The user behind the Authorization header; None when anonymous; 401 for a token nobody holds."""
        authorization = self.headers.get("Authorization")
        if not authorization:
            return None
        token = authorization.removeprefix("Bearer ").strip()
        if token not in self.hub.tokens:
            raise HubError(401, "Invalid credentials in Authorization header")
        return self.hub.tokens[token]

    def _writer(self, namespace: str) -> str:
        user = self._caller()
        if user is None:
            raise HubError(401, "You must be authenticated to write to the Hub")
        if user != namespace:
            raise HubError(403, f"You don't have the rights to write to the namespace {namespace!r}")
        return user

    def _readable_repo(self, repo_type: str, repo_id: str) -> Repo:
        user = self._caller()
        repo = self.hub.repos.get((repo_type, repo_id))
        if repo is None or (repo.private and user != repo.owner):
            raise HubError(404, "Repository not found", "RepoNotFound")
        return repo

    def _writable_repo(self, repo_type: str, repo_id: str) -> tuple[Repo, str]:
        repo = self._readable_repo(repo_type, repo_id)
        return repo, self._writer(repo.owner)

    # -- routing ---------------------------------------------------------------------------------------------
    def _route(self, method: str, segments: list[str]) -> None:
        if segments[:2] == ["api", "whoami-v2"] and method == "GET":
            return self.whoami()
        if segments[:3] == ["api", "repos", "create"] and method == "POST":
            return self.create_repo()
        if segments[:3] == ["api", "repos", "delete"] and method == "DELETE":
            return self.delete_repo()
        if segments[:2] == ["api", "validate-yaml"] and method == "POST":
            return self.validate_yaml()
        if len(segments) >= 4 and segments[0] == "api" and segments[1] in REPO_TYPES:
            repo_type, repo_id, rest = REPO_TYPES[segments[1]], "/".join(segments[2:4]), segments[4:]
            handler = _REPO_ROUTES.get((method, rest[0] if rest else None))
            if handler is None:
                raise HubError(404, f"no route for {method} {self.path}")
            return getattr(self, handler)(repo_type, repo_id, rest[1:])
        # File downloads: /[datasets/|spaces/]{namespace}/{name}/resolve/{revision}/{path}
        repo_type = "model"
        if segments and segments[0] in ("datasets", "spaces"):
            repo_type, segments = REPO_TYPES[segments[0]], segments[1:]
        if len(segments) >= 5 and segments[2] == "resolve" and method in ("GET", "HEAD"):
            return self.resolve(repo_type, "/".join(segments[:2]), segments[3], "/".join(segments[4:]))
        raise HubError(404, f"no route for {method} {self.path}")

    # -- account and repo endpoints --------------------------------------------------------------------------
    def whoami(self) -> None:
        user = self._caller()
        if user is None:
            raise HubError(401, "You must be authenticated")
        self._send_json(
            {
                "type": "user",
                "id": hashlib.sha1(user.encode()).hexdigest()[:24],
                "name": user,
                "fullname": user,
                "orgs": [],
                "auth": {"type": "access_token", "accessToken": {"displayName": "test", "role": "write"}},
            }
        )

    def create_repo(self) -> None:
        payload = self._json_body()
        user = self._caller()
        namespace = payload.get("organization") or user
        if user is None:
            raise HubError(401, "You must be authenticated to create a repo")
        self._writer(namespace)
        name = payload.get("name") or ""
        if not re.fullmatch(r"[\w.-]{1,96}", name):
            raise HubError(400, f"Invalid repo name {name!r}")
        repo_type = payload.get("type") or "model"
        private = payload.get("visibility") == "private" or bool(payload.get("private"))
        repo = self.hub.create_repo(repo_type, f"{namespace}/{name}", owner=namespace, private=private)
        self._send_json(
            {
                "url": f"{self.hub.url}/{URL_PREFIXES[repo_type]}{repo.repo_id}",
                "name": repo.repo_id,
                "id": repo.repo_id,
            }
        )

    def delete_repo(self) -> None:
        payload = self._json_body()
        repo_type = payload.get("type") or "model"
        repo_id = f"{payload.get('organization') or self._caller()}/{payload.get('name')}"
        repo, _ = self._writable_repo(repo_type, repo_id)
        with self.hub._lock:
            del self.hub.repos[(repo_type, repo.repo_id)]
        self._send_json({})

    def validate_yaml(self) -> None:
        """Check the README front matter: present, closed, no tabs, and a license id the Hub knows."""
        content = self._json_body().get("content", "")
        errors, warnings = [], []
        match = re.match(r"^---\n(.*?)\n---\n", content, flags=re.DOTALL)
        if not content.startswith("---"):
            warnings.append({"message": "empty or missing yaml metadata in repo card"})
        elif match is None:
            errors.append({"message": "the yaml metadata block is not closed by a '---' line"})
        else:
            front_matter = match.group(1)
            if "\t" in front_matter:
                errors.append({"message": "yaml metadata must not contain tab characters"})
            license_match = re.search(r"^license:\s*(\S+)\s*$", front_matter, flags=re.MULTILINE)
            if license_match and license_match.group(1).strip("'\"") not in KNOWN_LICENSES:
                errors.append({"message": f'"license" must be a known license id, got {license_match.group(1)}'})
        self._send_json({"errors": errors, "warnings": warnings}, status=400 if errors else 200)

    def repo_info(self, repo_type: str, repo_id: str, rest: list[str]) -> None:
        repo = self._readable_repo(repo_type, repo_id)
        commit = repo.resolve(rest[0] if rest else "main")
        self._send_json(
            {
                "_id": hashlib.sha1(repo.repo_id.encode()).hexdigest()[:24],
                "id": repo.repo_id,
                "author": repo.owner,
                "sha": commit.oid,
                "private": repo.private,
                "gated": False,
                "disabled": False,
                "downloads": 0,
                "likes": 0,
                "tags": [],
                "createdAt": repo.created_at,
                "lastModified": commit.date,
                "siblings": [{"rfilename": path} for path in sorted(commit.files)],
            }
        )

    def refs(self, repo_type: str, repo_id: str, rest: list[str]) -> None:
        repo = self._readable_repo(repo_type, repo_id)
        branches = [
            {"name": name, "ref": f"refs/heads/{name}", "targetCommit": oid}
            for name, oid in sorted(repo.branches.items())
        ]
        self._send_json({"branches": branches, "converts": [], "tags": []})

    def commits(self, repo_type: str, repo_id: str, rest: list[str]) -> None:
        repo = self._readable_repo(repo_type, repo_id)
        commit, history = repo.resolve(rest[0] if rest else "main"), []
        while commit is not None:
            history.append(
                {
                    "id": commit.oid,
                    "title": commit.title,
                    "message": commit.message,
                    "authors": [{"user": commit.author}],
                    "date": commit.date,
                }
            )
            commit = repo.commits.get(commit.parent) if commit.parent else None
        self._send_json(history)

    def create_branch(self, repo_type: str, repo_id: str, rest: list[str]) -> None:
        repo, _ = self._writable_repo(repo_type, repo_id)
        branch = "/".join(rest)
        if not branch or branch.startswith("refs/"):
            raise HubError(400, f"Invalid branch name {branch!r}")
        start = repo.resolve(self._json_body().get("startingPoint") or "main")
        with self.hub._lock:
            if branch in repo.branches:
                raise HubError(409, f"Reference refs/heads/{branch} already exists")
            repo.branches[branch] = start.oid
        self._send_json({})

    def delete_branch(self, repo_type: str, repo_id: str, rest: list[str]) -> None:
        repo, _ = self._writable_repo(repo_type, repo_id)
        branch = "/".join(rest)
        if branch == "main" or branch not in repo.branches:
            raise HubError(400 if branch == "main" else 404, f"Cannot delete branch {branch!r}")
        with self.hub._lock:
            del repo.branches[branch]
        self._send_json({})

    # -- file listings -----------------------------------------------------------------------------------------
    @staticmethod
    def _file_entry(path: str, content: bytes) -> dict:
        return {"type": "file", "path": path, "size": len(content), "oid": git_blob_oid(content)}

    @staticmethod
    def _folder_entry(path: str) -> dict:
        return {"type": "directory", "path": path, "size": 0, "oid": hashlib.sha1(path.encode()).hexdigest()}

    def tree(self, repo_type: str, repo_id: str, rest: list[str]) -> None:
        repo = self._readable_repo(repo_type, repo_id)
        if not rest:
            raise HubError(400, "missing revision")
        commit, folder = repo.resolve(rest[0]), "/".join(rest[1:]).strip("/")
        recursive = self.query.get("recursive", ["False"])[0].lower() in ("1", "true")
        prefix = f"{folder}/" if folder else ""
        entries, folders = [], set()
        for path, content in sorted(commit.files.items()):
            if not path.startswith(prefix):
                continue
            relative = path[len(prefix) :]
            parts = relative.split("/")
            # Every folder between `folder` and the file is listed once (all of them when recursive).
            for depth in range(1, len(parts) if recursive else min(2, len(parts))):
                folders.add(prefix + "/".join(parts[:depth]))
            if recursive or len(parts) == 1:
                entries.append(self._file_entry(path, content))
        if folder and not entries and not folders:
            raise HubError(404, f"{folder} does not exist on {rest[0]}", "EntryNotFound")
        self._send_json(sorted(entries + [self._folder_entry(f) for f in folders], key=lambda e: e["path"]))

    def paths_info(self, repo_type: str, repo_id: str, rest: list[str]) -> None:
        repo = self._readable_repo(repo_type, repo_id)
        commit = repo.resolve(rest[0] if rest else "main")
        form = parse_qs(self.body.decode())
        entries = []
        for path in form.get("paths", []):
            path = path.strip("/")
            if path in commit.files:
                entries.append(self._file_entry(path, commit.files[path]))
            elif any(name.startswith(path + "/") for name in commit.files):
                entries.append(self._folder_entry(path))
        self._send_json(entries)

    def resolve(self, repo_type: str, repo_id: str, revision: str, path: str) -> None:
        repo = self._readable_repo(repo_type, repo_id)
        commit = repo.resolve(revision)
        if path not in commit.files:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound")
        content = commit.files[path]
        headers = {"X-Repo-Commit": commit.oid, "ETag": f'"{git_blob_oid(content)}"', "Accept-Ranges": "bytes"}
        byte_range = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", ""))
        if byte_range and (byte_range.group(1) or byte_range.group(2)):
            start = int(byte_range.group(1) or 0)
            end = int(byte_range.group(2)) if byte_range.group(2) else len(content) - 1
            headers["Content-Range"] = f"bytes {start}-{end}/{len(content)}"
            return self._send(206, content[start : end + 1], headers, "application/octet-stream")
        self._send(200, content, headers, "application/octet-stream")

    # -- uploads -----------------------------------------------------------------------------------------------
    def preupload(self, repo_type: str, repo_id: str, rest: list[str]) -> None:
        repo, _ = self._writable_repo(repo_type, repo_id)
        commit = repo.resolve(rest[0] if rest else "main")
        files = []
        for file in self._json_body().get("files", []):
            existing = commit.files.get(file["path"])
            files.append(
                {
                    "path": file["path"],
                    "uploadMode": "regular",
                    "shouldIgnore": False,
                    "oid": git_blob_oid(existing) if existing is not None else None,
                }
            )
        self._send_json({"files": files, "commitOid": commit.oid})

    def commit(self, repo_type: str, repo_id: str, rest: list[str]) -> None:
        repo, user = self._writable_repo(repo_type, repo_id)
        branch = rest[0] if rest else "main"
        if self.hub.stop_on_next_commit:
            # Fault injection: the Hub goes away after receiving the commit, before answering it. The server is
            # fully stopped (listener closed, every connection cut) before the client can notice anything.
            self.hub.stop_on_next_commit = False
            self.hub.stop()
            raise _DropConnection()
        if self.query.get("create_pr"):
            raise HubError(400, "pull requests are not supported by the test hub")
        if branch not in repo.branches:
            raise HubError(404, f"Invalid rev id: {branch}", "RevisionNotFound")
        lines = [json.loads(line) for line in self.body.decode().splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "the commit payload must start with a header line")
        header = lines[0]["value"]
        with self.hub._lock:
            parent = repo.commits[repo.branches[branch]]
            if header.get("parentCommit") and header["parentCommit"] != parent.oid:
                raise HubError(412, f"parent commit {header['parentCommit']} is not the head of {branch}")
            files = dict(parent.files)
            for line in lines[1:]:
                key, value = line.get("key"), line.get("value", {})
                if key == "file":
                    files[value["path"]] = base64.b64decode(value["content"])
                elif key == "deletedFile":
                    if files.pop(value["path"], None) is None:
                        raise HubError(404, f"cannot delete {value['path']}: no such file", "EntryNotFound")
                elif key == "deletedFolder":
                    prefix = value["path"].rstrip("/") + "/"
                    files = {path: data for path, data in files.items() if not path.startswith(prefix)}
                else:
                    raise HubError(
                        400, f"unsupported commit operation {key!r} (the test hub only takes regular files)"
                    )
            commit = self.hub._new_commit(
                repo, parent.oid, files, header.get("summary", ""), header.get("description", ""), user
            )
            repo.branches[branch] = commit.oid
        self._send_json(
            {
                "success": True,
                "commitOid": commit.oid,
                "pullRequestUrl": None,
                "hookOutput": "",
                "commitUrl": f"{self.hub.url}/{URL_PREFIXES[repo_type]}{repo.repo_id}/commit/{commit.oid}",
            }
        )


class _DropConnection(Exception):
    """Raised by a handler to close the connection without sending any answer."""
