#!/usr/bin/env python3
"""A hostile registry for the credential tests (docs/security.md D39).

usage: hostile_registry.py PORTFILE LAYOUT

Listens on two free ports of 127.0.0.1, written to PORTFILE as "MAIN OTHER", and logs
every request to PORTFILE.log as `PORT METHOD PATH AUTH` (AUTH is the Authorization
header, or `-`).

MAIN is a registry that asks for Basic auth (401 on everything without an Authorization
header). With one, it serves the image `latest` of the OCI layout LAYOUT under any
repository, except that every blob answers with a redirect to OTHER under the host name
`localhost` (a different host), where the blob is served. `GET /file/NAME` on MAIN serves
a small file without auth (for ADD of a URL with `user:token@`). A repository whose name
contains `bigerr` answers 500 with a 5 MiB error body (no Content-Length).

OTHER, for paths under /v2/, is a registry that asks for a Bearer token from its own
/token, which answers with a 3 MiB token (no Content-Length).
"""
import http.server, json, os, sys, threading

portfile, layout = sys.argv[1:3]
lock = threading.Lock()
ports = {}


def log(port, handler):
    with lock, open(portfile + ".log", "a") as f:
        f.write(f"{port} {handler.command} {handler.path} {handler.headers.get('Authorization') or '-'}\n")


def blob(digest):
    algo, _, hexd = digest.partition(":")
    if algo != "sha256" or not hexd.isalnum():
        return None
    p = os.path.join(layout, "blobs", "sha256", hexd)
    return open(p, "rb").read() if os.path.exists(p) else None


def manifest():
    index = json.load(open(os.path.join(layout, "index.json")))
    d = index["manifests"][0]["digest"]
    return d, blob(d)


class Main(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, code, body=b"", ctype="application/json", headers=()):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        log(ports["main"], self)
        if self.path.startswith("/file/"):
            return self.reply(200, b"payload\n", "application/octet-stream")
        if not self.headers.get("Authorization"):
            return self.reply(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"auth"}]}',
                              headers=[("WWW-Authenticate", 'Basic realm="hostile"')])
        if self.path == "/v2/":
            return self.reply(200, b"{}")
        if "bigerr" in self.path:
            return huge(self, 500, b'{"errors":[{"code":"UNKNOWN","message":"', 5 << 20, b'"}]}')
        if "/manifests/" in self.path:
            d, m = manifest()
            return self.reply(200, m, "application/vnd.oci.image.manifest.v1+json",
                              [("Docker-Content-Digest", d)])
        if "/blobs/" in self.path:
            d = self.path.rsplit("/", 1)[1]
            loc = f"http://localhost:{ports['other']}/blobs/{d}"
            return self.reply(307, b"", headers=[("Location", loc)])
        return self.reply(404, b'{"errors":[{"code":"NOT_FOUND","message":"no"}]}')

    do_HEAD = do_GET


def huge(handler, code, head, n, tail):
    """A body of `n` filler bytes between `head` and `tail`, without Content-Length."""
    handler.send_response(code)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Connection", "close")
    handler.end_headers()
    handler.close_connection = True
    try:
        handler.wfile.write(head)
        chunk = b"x" * 65536
        for _ in range(n // len(chunk)):
            handler.wfile.write(chunk)
        handler.wfile.write(tail)
    except (BrokenPipeError, ConnectionResetError):
        pass


class Other(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        log(ports["other"], self)
        if self.path.startswith("/token"):
            return huge(self, 200, b'{"token":"', 3 << 20, b'"}')
        if self.path.startswith("/v2/"):
            realm = f'Bearer realm="http://127.0.0.1:{ports["other"]}/token",service="hostile"'
            body = b'{"errors":[{"code":"UNAUTHORIZED","message":"token"}]}'
            self.send_response(401)
            self.send_header("WWW-Authenticate", realm)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        b = blob(self.path.rsplit("/", 1)[1])
        self.send_response(200 if b is not None else 404)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(b or b"")))
        self.end_headers()
        if self.command != "HEAD" and b:
            self.wfile.write(b)

    do_HEAD = do_GET


main = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Main)
other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Other)
ports["main"], ports["other"] = main.server_address[1], other.server_address[1]
threading.Thread(target=other.serve_forever, daemon=True).start()
with open(portfile + ".tmp", "w") as f:
    f.write(f"{ports['main']} {ports['other']}\n")
os.rename(portfile + ".tmp", portfile)
main.serve_forever()
