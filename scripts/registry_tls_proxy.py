"""An HTTPS front for the test schema registry, started by scripts/registry.sh with REGISTRY_TLS=1:
TLS (Python's ssl module, the certificate scripts/registry.sh made) and HTTP basic auth, as a
registry behind a TLS-terminating proxy is run in production; requests that pass go on to
Apicurio's plain-HTTP port on 127.0.0.1.
  registry_tls_proxy.py LISTEN_PORT UPSTREAM_PORT CERT KEY AUTH_FILE
AUTH_FILE holds the one accepted 'user:password'."""
import base64
import http.server
import ssl
import sys
import urllib.error
import urllib.request

listen_port, upstream_port, cert, key, auth_file = sys.argv[1:6]
with open(auth_file, encoding="utf-8") as f:
    ACCEPTED = "Basic " + base64.b64encode(f.readline().strip().encode()).decode()
UPSTREAM = f"http://127.0.0.1:{upstream_port}"


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def forward(self):
        if self.headers.get("Authorization") != ACCEPTED:
            self.answer(401, b'{"error_code":401,"message":"Unauthorized"}',
                        {"WWW-Authenticate": 'Basic realm="registry"'})
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() in ("accept", "content-type")}
        request = urllib.request.Request(UPSTREAM + self.path, data=body, method=self.command,
                                         headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as r:
                self.answer(r.status, r.read(), {"Content-Type": r.headers.get("Content-Type", "")})
        except urllib.error.HTTPError as e:
            self.answer(e.code, e.read(), {"Content-Type": e.headers.get("Content-Type", "")})

    def answer(self, status, body, headers):
        self.send_response(status)
        for k, v in headers.items():
            if v:
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = forward

    def log_message(self, fmt, *args):  # one line per request on stderr (the proxy's log)
        sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))


server = http.server.ThreadingHTTPServer(("127.0.0.1", int(listen_port)), Proxy)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
