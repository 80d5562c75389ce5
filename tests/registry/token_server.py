#!/usr/bin/env python3
"""A Bearer token server for distribution's `auth: token:` (the tests' token flow).

usage: token_server.py PORTFILE KEY CERT USER PASS [access_token]

Listens on 127.0.0.1 (a free port, written to PORTFILE), answers GET /token?service=&scope=
with an RS256 JWT signed by KEY (signed with openssl) carrying CERT in `x5c`, granting the
requested scopes when the Basic credentials are USER:PASS. Anonymous or wrong credentials
get 401. With `access_token`, the token is returned in that field instead of `token`.
POST /token is the OAuth2 refresh-token grant containers/image uses for identity tokens
(auth.json `identitytoken`): form fields grant_type=refresh_token, refresh_token, service,
scope (space-separated), client_id; the refresh token accepted is `refresh-PASS`.
Every issued token is counted in PORTFILE.count (the tests check token reuse).
"""
import base64, http.server, json, os, subprocess, sys, time, urllib.parse

portfile, key, cert, user, password = sys.argv[1:6]
field = sys.argv[6] if len(sys.argv) > 6 else "token"
der = subprocess.run(["openssl", "x509", "-in", cert, "-outform", "DER"],
                     check=True, capture_output=True).stdout
x5c = base64.b64encode(der).decode()


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def sign(data):
    return subprocess.run(["openssl", "dgst", "-sha256", "-sign", key],
                          input=data, check=True, capture_output=True).stdout


class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def deny(self):
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"details":"unauthorized"}')

    def do_POST(self):
        u = urllib.parse.urlparse(self.path)
        n = int(self.headers.get("Content-Length") or 0)
        form = urllib.parse.parse_qs(self.rfile.read(n).decode())
        one = lambda k: form.get(k, [""])[0]
        if (u.path != "/token" or one("grant_type") != "refresh_token"
                or one("refresh_token") != "refresh-" + password or not one("client_id")):
            return self.deny()
        self.issue({"service": [one("service")], "scope": one("scope").split()}, "access_token")

    def do_GET(self):
        u = urllib.parse.urlparse(self.path)
        q = urllib.parse.parse_qs(u.query)
        auth = self.headers.get("Authorization", "")
        want = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        if u.path != "/token" or auth != want:
            return self.deny()
        self.issue(q, field)

    def issue(self, q, field):
        access = []
        for s in q.get("scope", []):
            parts = s.split(":")
            if len(parts) >= 3:
                access.append({"type": parts[0], "name": ":".join(parts[1:-1]),
                               "actions": parts[-1].split(",")})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [x5c]}
        claims = {"iss": "hod-test-issuer", "sub": user, "aud": q.get("service", [""])[0],
                  "exp": now + 300, "nbf": now - 10, "iat": now,
                  "jti": os.urandom(8).hex(), "access": access}
        signing_input = (b64(json.dumps(header).encode()) + "." +
                         b64(json.dumps(claims).encode())).encode()
        jwt = signing_input.decode() + "." + b64(sign(signing_input))
        with open(portfile + ".count", "a") as f:
            f.write("1\n")
        body = json.dumps({field: jwt, "expires_in": 300}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
with open(portfile + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(portfile + ".tmp", portfile)
srv.serve_forever()
