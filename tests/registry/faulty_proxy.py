#!/usr/bin/env python3
"""A faulty HTTP proxy in front of a test registry (the tests' fault injection).

usage: faulty_proxy.py PORTFILE UPSTREAM MODE

Listens on 127.0.0.1 (a free port, written to PORTFILE) and forwards every request to
UPSTREAM (`127.0.0.1:PORT`, plain HTTP), except that, by MODE:
  drop-blob-once   the first GET of each blob sends half its bytes, then closes the connection
  drop-blob        every GET of a blob sends half its bytes, then closes the connection
  500              every request under /v2/<repo>/ answers 500 (the /v2/ ping passes)
  corrupt-blob     blob bodies are served with their first byte changed
  big-manifest     manifests are padded past 4 MiB
  unknown-mt       manifests are served as `application/vnd.hod.unknown+json`
  reject-stream    a streamed upload (a PATCH with a chunked body) answers 500
  pass             nothing is changed (to see the requests)
Requests seen are counted in PORTFILE.count (a chunked request body is marked `chunked`).
"""
import http.client, http.server, os, sys

portfile, upstream, mode = sys.argv[1:4]
dropped = set()


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def read_chunked(self):
        body = b""
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return body
            body += self.rfile.read(size)
            self.rfile.readline()

    def forward(self):
        chunked = "chunked" in (self.headers.get("Transfer-Encoding") or "").lower()
        with open(portfile + ".count", "a") as f:
            f.write(f"{self.command} {self.path}{' chunked' if chunked else ''}\n")
        n = int(self.headers.get("Content-Length") or 0)
        body = self.read_chunked() if chunked else (self.rfile.read(n) if n else None)
        if chunked and mode == "reject-stream" and self.command == "PATCH":
            self.send_response(500)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")
            return
        if mode == "500" and self.path.startswith("/v2/") and self.path != "/v2/":
            self.send_response(500)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")
            return
        c = http.client.HTTPConnection(upstream)
        # The client's Host goes through, so the registry's upload locations point here.
        hdrs = {k: v for k, v in self.headers.items()
                if k.lower() not in ("connection", "transfer-encoding", "content-length")}
        if body is not None:
            hdrs["Content-Length"] = str(len(body))
        c.request(self.command, self.path, body=body, headers=hdrs)
        r = c.getresponse()
        data = r.read()
        is_blob = "/blobs/sha256:" in self.path and self.command == "GET" and r.status in (200, 206)
        is_manifest = "/manifests/" in self.path and self.command in ("GET", "HEAD") and r.status == 200
        ctype = r.getheader("Content-Type", "")
        if is_manifest and mode == "big-manifest" and self.command == "GET":
            data = data.rstrip()[:-1] + b',"padding":"' + b"x" * (5 << 20) + b'"}'
        if is_manifest and mode == "unknown-mt":
            ctype = "application/vnd.hod.unknown+json"
            data = data.replace(b"application/vnd.oci.image.manifest.v1+json",
                                b"application/vnd.hod.unknown+json").replace(
                b"application/vnd.docker.distribution.manifest.v2+json",
                b"application/vnd.hod.unknown+json")
        if is_blob and mode == "corrupt-blob" and data:
            data = bytes([data[0] ^ 0xff]) + data[1:]
        drop = is_blob and len(data) > 1 and (
            mode == "drop-blob" or (mode == "drop-blob-once" and self.path not in dropped))
        self.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() in ("content-length", "connection", "transfer-encoding", "content-type"):
                continue
            self.send_header(k, v)
        if ctype:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        if drop:
            dropped.add(self.path)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = forward


class Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # clients hanging up on a dropped transfer are expected


srv = Server(("127.0.0.1", 0), H)
with open(portfile + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(portfile + ".tmp", portfile)
srv.serve_forever()
