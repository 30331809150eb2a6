"""What the object-storage tests share: the servers (moto for S3, Azurite for Azure Blob,
fake-gcs-server for GCS, each started and stopped by its scripts/*.sh once per module), their
independent clients (boto3, a small SharedKey Blob client, the emulator's JSON API), and one
run() of the sluice binary with an environment that holds only the store settings a test gives.

A test module uses a server by importing its fixture: `from object_store_helpers import s3`.
Each fixture yields a dict with at least
  env:     the settings sluice reads from the environment to reach the server (run() uses them)
  options: delta-rs's storage_options to read the same tables (deltalake, Polars)
  yaml:    the `storage_options:` lines of a pipeline.yaml (delta-rs's lower-case keys)
  secret:  a credential that must never be printed (or None where the server needs none)
  uri:     uri(prefix) -> the store's URI of a prefix in the 'lake' bucket / container
  keys:    keys(prefix) -> every object name under prefix, from the server (not from sluice)
"""
import base64
import datetime
import email.utils
import hashlib
import hmac
import http.server
import json
import os
import pathlib
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import ROOT, SLUICE

S3_SECRET = "s3cr3t-never-printed-7c1e"
ACCOUNT = "devstoreaccount1"
# Azurite's well-known development key (public): the Azure "secret" of the tests is a SAS token.
AZURE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
# The emulator ignores a bearer token: one is sent so that a test can check it is never shown.
GCS_TOKEN = "ya29.never-printed-token-5d2b"
# Settings of every store: run() starts from an environment without them.
STORE_VARIABLES = ("AWS_", "AZURE_", "AZURITE_", "GOOGLE_", "STORAGE_EMULATOR_HOST")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(**extra):
    """os.environ without any object-store setting, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(STORE_VARIABLES)}
    env.update(extra)
    return env


def run(store, *args, env=None, extra=None, timeout=300):
    """Runs sluice with the store's environment (`env` instead of it when given, `extra` on top);
    never raises on the exit code."""
    base = store["env"] if store is not None and env is None else (env or {})
    return subprocess.run([str(SLUICE), *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env=clean_env(**{**base, **(extra or {})}))


def append(store, uri, table, *flags, **kw):
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "in.parquet"
        pq.write_table(table, path)
        result = run(store, "table", "append", uri, path, *flags, **kw)
    assert result.returncode == 0, result.stderr
    return result


def export(store, uri, *flags, **kw):
    with tempfile.TemporaryDirectory() as tmp:
        out = pathlib.Path(tmp) / "out.arrow"
        result = run(store, "table", "export", uri, out, *flags, **kw)
        assert result.returncode == 0, result.stderr
        return pa.ipc.open_file(out).read_all()


def rows(start, n):
    return pa.table({"id": pa.array(range(start, start + n), pa.int64()),
                     "part": pa.array([["a/b", "50%", "x y", "ünï"][i % 4] for i in range(n)]),
                     "v": pa.array([f"value-{i}" for i in range(start, start + n)])})


def ids(table):
    return sorted(table.column("id").to_pylist())


def server(script, port_variable):
    """Starts scripts/<script> on a free port; returns (port, stop())."""
    port = free_port()
    env = dict(os.environ, **{port_variable: str(port)})
    subprocess.run([ROOT / "scripts" / script, "start"], env=env, check=True)
    return port, lambda: subprocess.run([ROOT / "scripts" / script, "stop"], env=env, check=False)


# --- S3 (moto) --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def s3():
    """moto's endpoint, a boto3 client, its request log; one bucket, 'lake'."""
    import boto3

    port, stop = server("s3.sh", "S3_PORT")
    try:
        endpoint = f"http://127.0.0.1:{port}"
        options = {"AWS_ENDPOINT_URL": endpoint, "AWS_ALLOW_HTTP": "true", "AWS_REGION": "us-east-1",
                   "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": S3_SECRET}
        client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test",
                              aws_secret_access_key=S3_SECRET, region_name="us-east-1")
        client.create_bucket(Bucket="lake")

        def keys(prefix):
            out, token = [], None
            while True:
                kw = {"Bucket": "lake", "Prefix": prefix}
                if token:
                    kw["ContinuationToken"] = token
                page = client.list_objects_v2(**kw)
                out += [o["Key"] for o in page.get("Contents", [])]
                if not page.get("IsTruncated"):
                    return out
                token = page["NextContinuationToken"]

        yaml = "".join(f"  {k.lower()}: \"{v}\"\n" for k, v in options.items())
        yield {"scheme": "s3", "endpoint": endpoint, "env": options, "options": options, "client": client,
               "yaml": yaml, "secret": S3_SECRET, "uri": lambda prefix: f"s3://lake/{prefix}", "keys": keys,
               "log": ROOT / ".run" / f"s3-{port}" / "s3.log"}
    finally:
        stop()


# --- Azure Blob (Azurite) ---------------------------------------------------------------------

class Blobs:
    """Just enough of the Blob REST API (SharedKey) to create a container and look at blobs."""

    def __init__(self, port, scheme="http", cafile=None):
        self.base = f"{scheme}://127.0.0.1:{port}/{ACCOUNT}"
        self.context = ssl.create_default_context(cafile=cafile) if cafile else None

    def request(self, method, path, query=None, body=b"", headers=None):
        query = query or {}
        headers = dict(headers or {}, **{"x-ms-date": email.utils.formatdate(usegmt=True),
                                         "x-ms-version": "2021-12-02"})
        if method == "PUT":  # else urllib sends its form content type, which the signature covers
            headers["Content-Type"] = "application/octet-stream"
        ms = "".join(f"{k}:{v}\n" for k, v in sorted(headers.items()) if k.startswith("x-ms-"))
        resource = f"/{ACCOUNT}/{ACCOUNT}{urllib.parse.quote(path)}" + "".join(
            f"\n{k}:{v}" for k, v in sorted(query.items()))
        to_sign = "\n".join([method, "", "", str(len(body)) if body else "", "", headers.get("Content-Type", ""),
                             "", "", "", headers.get("If-None-Match", ""), "", ""]) + "\n" + ms + resource
        mac = hmac.new(base64.b64decode(AZURE_KEY), to_sign.encode(), hashlib.sha256).digest()
        headers["Authorization"] = f"SharedKey {ACCOUNT}:{base64.b64encode(mac).decode()}"
        url = self.base + urllib.parse.quote(path) + ("?" + urllib.parse.urlencode(query) if query else "")
        req = urllib.request.Request(url, data=body if method == "PUT" else None, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30, context=self.context) as r:
                return r.status, r.read(), dict(r.headers)
        except urllib.error.HTTPError as e:
            return e.code, e.read(), dict(e.headers)

    def create_container(self, name):
        status, body, _ = self.request("PUT", f"/{name}", {"restype": "container"})
        assert status in (201, 409), body

    def list(self, container, prefix):
        """{name: (size, Last-Modified as epoch ms)} of every blob under prefix."""
        out, marker = {}, ""
        while True:
            query = {"comp": "list", "prefix": prefix, "restype": "container"}
            if marker:
                query["marker"] = marker
            status, body, _ = self.request("GET", f"/{container}", query)
            assert status == 200, body
            root = ET.fromstring(body)
            for blob in root.iter("Blob"):
                props = blob.find("Properties")
                when = email.utils.parsedate_to_datetime(props.find("Last-Modified").text)
                out[blob.find("Name").text] = (int(props.find("Content-Length").text), int(when.timestamp() * 1000))
            marker = root.findtext("NextMarker") or ""
            if not marker:
                return out

    def get(self, container, name):
        status, body, _ = self.request("GET", f"/{container}/{name}")
        assert status == 200, body
        return body

    def put(self, container, name, body):
        status, text, _ = self.request("PUT", f"/{container}/{name}", body=body,
                                       headers={"x-ms-blob-type": "BlockBlob", "If-None-Match": "*"})
        return status

    def account_sas(self, permissions="rwdlac"):
        """An account SAS token (version 2021-12-02 string-to-sign), valid for an hour."""
        expiry = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        fields = [ACCOUNT, permissions, "b", "sco", "", expiry, "", "http,https", "2021-12-02", "", ""]
        sig = base64.b64encode(hmac.new(base64.b64decode(AZURE_KEY), "\n".join(fields).encode(), hashlib.sha256).digest()).decode()
        return urllib.parse.urlencode({"sv": "2021-12-02", "ss": "b", "srt": "sco", "sp": permissions, "se": expiry,
                                       "spr": "http,https", "sig": sig})


@pytest.fixture(scope="module")
def az():
    """Azurite's blob endpoint, sluice's environment and deltalake's options (delta-rs keys), a
    Blobs client; one container, 'lake'. A pipeline reaches it with a SAS token (the secret)."""
    port, stop = server("azurite.sh", "AZURITE_PORT")
    try:
        blobs = Blobs(port)
        blobs.create_container("lake")
        url = f"http://127.0.0.1:{port}"
        # deltalake (object_store) reads AZURITE_BLOB_STORAGE_URL from the environment, as sluice.
        os.environ["AZURITE_BLOB_STORAGE_URL"] = url
        sas = blobs.account_sas()
        yaml = (f"  azure_storage_account_name: {ACCOUNT}\n"
                f"  azure_storage_endpoint: {url}/{ACCOUNT}\n"
                "  azure_allow_http: \"true\"\n"
                f"  azure_storage_sas_token: \"{sas}\"\n")
        yield {"scheme": "az", "port": port, "blobs": blobs, "sas": sas,
               "env": {"AZURE_STORAGE_USE_EMULATOR": "true", "AZURITE_BLOB_STORAGE_URL": url},
               "options": {"azure_storage_use_emulator": "true", "azure_storage_account_name": ACCOUNT},
               "yaml": yaml, "secret": urllib.parse.parse_qs(sas)["sig"][0],
               "uri": lambda prefix: f"az://lake/{prefix}", "keys": lambda prefix: sorted(blobs.list("lake", prefix))}
    finally:
        os.environ.pop("AZURITE_BLOB_STORAGE_URL", None)
        stop()


# --- Azure AD: a service principal, Azurite over https with --oauth basic ----------------------

AD_TENANT = "5f1c0a4e-7d2b-4c39-9e61-0a1b2c3d4e5f"
AD_CLIENT = "sluice-test-app"
AD_SECRET = "ad-s3cr3t-never-printed-4f2a"
# Workload identity: the federated token a pod's token file holds (the endpoint takes it as client_assertion).
AD_FEDERATED_TOKEN = "eyJ.federated-token-never-printed-8b1d.sig"


def make_test_ca(folder):
    """A certificate authority and a server certificate for 127.0.0.1 signed by it (openssl), in
    `folder`: (ca.pem, cert.pem, key.pem). No system store trusts it."""
    folder = pathlib.Path(folder)

    def openssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=folder)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=sluice test CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    openssl("req", *ec, "-keyout", "key.pem", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (folder / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                                    "extendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "cert.pem", "-days", "2", "-extfile", "ext.cnf")
    return folder / "ca.pem", folder / "cert.pem", folder / "key.pem"


def _b64url(data):
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


class TokenEndpoint:
    """An Azure AD token endpoint over https (the test CA): POST /{tenant}/oauth2/v2.0/token with
    the client-credentials form. It checks tenant, client id and secret (or the federated token as
    client_assertion), and answers a JWT-shaped
    token that Azurite's --oauth basic accepts (audience https://storage.azure.com, issuer
    https://sts.windows.net/{tenant}/, iat/nbf/exp; Azurite does not check signatures), or, for a
    wrong secret, AAD's 401 invalid_client. `requests` holds (tenant, client_id, scope, ok) of each."""

    def __init__(self, cert, key, lifetime=3600):
        endpoint = self
        self.requests = []
        self.lifetime = lifetime

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                form = urllib.parse.parse_qs(self.rfile.read(int(self.headers.get("Content-Length", 0))).decode())
                field = lambda name: (form.get(name) or [""])[0]  # noqa: E731
                tenant = self.path.split("/")[1]
                federated = (field("client_assertion_type") == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
                             and field("client_assertion") == AD_FEDERATED_TOKEN and not field("client_secret"))
                ok = (self.path == f"/{AD_TENANT}/oauth2/v2.0/token" and field("grant_type") == "client_credentials"
                      and field("client_id") == AD_CLIENT and (field("client_secret") == AD_SECRET or federated))
                endpoint.requests.append((tenant, field("client_id"), field("scope"), ok))
                if ok:
                    now = int(time.time())
                    token = _b64url({"alg": "none", "typ": "JWT"}) + "." + _b64url({
                        "aud": "https://storage.azure.com", "iss": f"https://sts.windows.net/{tenant}/",
                        "iat": now - 60, "nbf": now - 60, "exp": now + endpoint.lifetime, "appid": AD_CLIENT}) + ".unsigned"
                    status, body = 200, {"token_type": "Bearer", "expires_in": endpoint.lifetime, "access_token": token}
                else:
                    status, body = 401, {"error": "invalid_client", "error_description":
                                         "AADSTS7000215: Invalid client secret provided. Trace ID: 0f3e"}
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def token(self, cafile):
        """A token for the tests' own readers (deltalake's bearer_token)."""
        form = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": AD_CLIENT,
                                       "client_secret": AD_SECRET, "scope": "https://storage.azure.com/.default"})
        with urllib.request.urlopen(f"{self.url}/{AD_TENANT}/oauth2/v2.0/token", data=form.encode(), timeout=10,
                                    context=ssl.create_default_context(cafile=str(cafile))) as r:
            return json.loads(r.read())["access_token"]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def az_ad():
    """Azurite over https (a certificate from a CA the test makes) with --oauth basic, and a
    token endpoint for one service principal. sluice reaches it with AZURE_TENANT_ID,
    AZURE_CLIENT_ID, AZURE_CLIENT_SECRET (the secret), AZURE_AUTHORITY_HOST and SSL_CERT_FILE, no
    account key; deltalake reads with a bearer token of its own from the same endpoint."""
    with tempfile.TemporaryDirectory() as tmp:
        ca, cert, key = make_test_ca(tmp)
        tokens = TokenEndpoint(cert, key)
        port = free_port()
        env = dict(os.environ, AZURITE_PORT=str(port), AZURITE_CERT=str(cert), AZURITE_KEY=str(key),
                   AZURITE_OAUTH="basic")
        script = ROOT / "scripts" / "azurite.sh"
        subprocess.run([script, "start"], env=env, check=True)
        # deltalake (object_store, rustls) trusts SSL_CERT_FILE as sluice does.
        old_cert_file = os.environ.get("SSL_CERT_FILE")
        os.environ["SSL_CERT_FILE"] = str(ca)
        try:
            blobs = Blobs(port, "https", cafile=str(ca))
            blobs.create_container("lake")
            endpoint = f"https://127.0.0.1:{port}/{ACCOUNT}"
            sluice_env = {"AZURE_STORAGE_ACCOUNT_NAME": ACCOUNT, "AZURE_STORAGE_ENDPOINT": endpoint,
                          "AZURE_TENANT_ID": AD_TENANT, "AZURE_CLIENT_ID": AD_CLIENT, "AZURE_CLIENT_SECRET": AD_SECRET,
                          "AZURE_AUTHORITY_HOST": tokens.url, "SSL_CERT_FILE": str(ca)}
            yaml = (f"  azure_storage_account_name: {ACCOUNT}\n"
                    f"  azure_storage_endpoint: {endpoint}\n"
                    f"  azure_tenant_id: {AD_TENANT}\n"
                    f"  azure_client_id: {AD_CLIENT}\n"
                    f"  azure_client_secret: \"{AD_SECRET}\"\n"
                    f"  azure_authority_host: {tokens.url}\n")
            yield {"scheme": "az", "port": port, "blobs": blobs, "ca": ca, "tokens": tokens, "env": sluice_env,
                   "options": {"azure_storage_account_name": ACCOUNT, "azure_storage_endpoint": endpoint,
                               "bearer_token": tokens.token(ca)},
                   "yaml": yaml, "secret": AD_SECRET, "uri": lambda prefix: f"az://lake/{prefix}",
                   "keys": lambda prefix: sorted(blobs.list("lake", prefix))}
        finally:
            if old_cert_file is None:
                os.environ.pop("SSL_CERT_FILE", None)
            else:
                os.environ["SSL_CERT_FILE"] = old_cert_file
            subprocess.run([script, "stop"], env=env, check=False)
            tokens.close()


# --- GCS (fake-gcs-server) --------------------------------------------------------------------

class Emulator:
    """The emulator's JSON API, used as the oracle for what lies in the bucket."""

    def __init__(self, endpoint):
        self.endpoint = endpoint

    def request(self, method, target, body=None, headers=None):
        req = urllib.request.Request(self.endpoint + target, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def names(self, prefix):
        out, token = {}, ""
        while True:
            target = "/storage/v1/b/lake/o?prefix=" + urllib.parse.quote(prefix, safe="")
            if token:
                target += "&pageToken=" + urllib.parse.quote(token, safe="")
            status, body = self.request("GET", target)
            assert status == 200, body
            page = json.loads(body)
            out.update({o["name"]: o for o in page.get("items", [])})
            token = page.get("nextPageToken", "")
            if not token:
                return out

    def read(self, name):
        status, body = self.request("GET", f"/storage/v1/b/lake/o/{urllib.parse.quote(name, safe='')}?alt=media")
        assert status == 200, body
        return body

    def upload(self, name, content):
        return self.request("POST", f"/upload/storage/v1/b/lake/o?uploadType=media&name={urllib.parse.quote(name, safe='')}",
                            content, {"Content-Type": "application/octet-stream"})[0]


@pytest.fixture(scope="module")
def gcs():
    """The emulator's endpoint, sluice's environment, delta-rs's options; one bucket, 'lake'."""
    port, stop = server("gcs.sh", "GCS_PORT")
    try:
        endpoint = f"http://127.0.0.1:{port}"
        emulator = Emulator(endpoint)
        status, body = emulator.request("POST", "/storage/v1/b", json.dumps({"name": "lake"}).encode(),
                                        {"Content-Type": "application/json"})
        assert status == 200, body
        # delta-rs: a service-account JSON whose gcs_base_url points at the emulator and that
        # asks for no OAuth token (its key is never used then).
        key = {"private_key": "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n",
               "private_key_id": "emulator", "client_email": "emulator@example.com",
               "gcs_base_url": endpoint, "disable_oauth": True}
        yaml = f"  storage_emulator_host: {endpoint}\n  google_oauth_access_token: {GCS_TOKEN}\n"
        yield {"scheme": "gs", "env": {"STORAGE_EMULATOR_HOST": endpoint}, "emulator": emulator,
               "options": {"google_service_account_key": json.dumps(key)}, "yaml": yaml, "secret": GCS_TOKEN,
               "uri": lambda prefix: f"gs://lake/{prefix}", "keys": lambda prefix: sorted(emulator.names(prefix)),
               "log": ROOT / ".run" / f"gcs-{port}" / "gcs.log"}
    finally:
        stop()


# --- a recording proxy in front of a store ---------------------------------------------------

class RecordingProxy:
    """An HTTP proxy on 127.0.0.1 in front of `upstream` (a store's http endpoint) that keeps every
    request's method, path, headers (lower-case names) and the response status, so that a test can
    see which credentials sluice really sent. Forwards everything unchanged; stop() when done."""

    def __init__(self, upstream):
        import http.client
        import http.server
        import threading

        target = urllib.parse.urlsplit(upstream)
        self.requests = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _body(self):
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    out = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0], 16)
                        if size == 0:  # then trailers (aws-chunked's checksum) up to an empty line
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return out
                        out += self.rfile.read(size + 2)[:size]
                return self.rfile.read(int(self.headers.get("Content-Length", 0)))

            def _forward(self):
                body = self._body()  # HTTP chunks joined; aws-chunked framing, if any, left for the store
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("transfer-encoding", "expect")}
                if body or self.command in ("PUT", "POST"):
                    headers["Content-Length"] = str(len(body))
                conn = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
                conn.request(self.command, self.path, body=body, headers=headers)
                r = conn.getresponse()
                data = r.read()
                proxy.requests.append({"method": self.command, "path": self.path, "status": r.status,
                                       "headers": {k.lower(): v for k, v in self.headers.items()},
                                       "body": body, "response": data})
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                length = r.getheader("Content-Length") if self.command == "HEAD" else str(len(data))
                self.send_header("Content-Length", length or "0")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


# --- a pipeline whose storage is on a store ---------------------------------------------------

def storage_yaml(store, prefix):
    """`storage:` and `storage_options:` (delta-rs's lower-case keys) for a new prefix."""
    return f"storage: {store['uri'](prefix)}\nstorage_options:\n{store['yaml']}"


def set_storage(pipe, store, prefix):
    text = (pipe / "pipeline.yaml").read_text().replace("storage: ./data\n", storage_yaml(store, prefix))
    (pipe / "pipeline.yaml").write_text(text)


def table(store, prefix, name, version=None):
    from deltalake import DeltaTable

    return DeltaTable(f"{store['uri'](prefix)}/tables/{name}", storage_options=store["options"], version=version)


def events(store, prefix):
    """The pipeline's event log, read by deltalake."""
    from deltalake import DeltaTable

    dt = DeltaTable(f"{store['uri'](prefix)}/system/event_log", storage_options=store["options"])
    return dt.to_pyarrow_table().to_pylist()


def start(pipe, name, env=None):
    """`sluice run pipe` in the background, stderr kept in <name>.stderr beside the folder."""
    err = open(pipe.parent / f"{name}.stderr", "w")
    proc = subprocess.Popen([str(SLUICE), "run", str(pipe)], stdout=subprocess.DEVNULL, stderr=err,
                            env=env or clean_env())
    proc.err_path = pipe.parent / f"{name}.stderr"
    return proc


def wait_for(condition, timeout, what, proc=None):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"sluice exited ({proc.returncode}) waiting for {what}: {proc.err_path.read_text()[-3000:]}")
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def sigkill_chaos(store, tmp_path, bootstrap, total, kills, kill_after=(-1, 0.4), progress=0, triggers=30):
    """The chaos test's pipeline (bronze -> silver with a DROP ROW expectation, checkpoints every
    5 commits) with its storage on `store`: `total` records in about `triggers` commits, `kills`
    SIGKILLs at random (seeded) moments (10**uniform(*kill_after) seconds after a start or, with
    `progress`, after the run has committed that many more offsets to bronze), a final run;
    bronze holds every offset once, silver exactly the expected ids once."""
    import random
    import signal
    import time
    import uuid
    from collections import Counter

    from test_exactly_once_chaos import (PARTITIONS, create_topic, expected_silver_ids, high_watermarks,
                                         make_pipeline, produce)
    seed = int(os.environ.get("SLUICE_CHAOS_SEED", random.randrange(1 << 30)))
    print(f"\n{store['scheme']} chaos seed {seed} (rerun with SLUICE_CHAOS_SEED={seed}), {total} records")
    rng = random.Random(seed)
    topic = create_topic(bootstrap, PARTITIONS)
    produce(bootstrap, topic, 0, total, PARTITIONS)
    marks = high_watermarks(bootstrap, topic, PARTITIONS)
    prefix = f"chaos-{uuid.uuid4().hex[:8]}"
    pipe = make_pipeline(tmp_path, "chaos", bootstrap, topic, max_per_trigger=total // triggers)
    set_storage(pipe, store, prefix)

    def offsets():
        try:
            dt = table(store, prefix, "bronze")
        except Exception:  # no commit yet
            return None, [0] * PARTITIONS
        return dt, [dt.transaction_version(f"chaos/bronze/{topic}/{p}") or 0 for p in range(PARTITIONS)]

    def done():
        bronze, offs = offsets()
        if bronze is None or offs != marks:
            return False
        silver = table(store, prefix, "silver")
        read = silver.transaction_version(f"chaos/silver/{bronze.metadata().id}")
        return read is not None and read >= bronze.version()

    for kill in range(kills):
        before = sum(offsets()[1])
        proc = start(pipe, f"run{kill}")
        if progress:  # a kill while the run streams, not while it starts up
            wait_for(lambda: sum(offsets()[1]) >= min(before + progress, total - 1), 120, "bronze to advance", proc)
        time.sleep(10 ** rng.uniform(*kill_after))  # the kill's moment
        assert proc.poll() is None, proc.err_path.read_text()[-3000:]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        _, offs = offsets()
        print(f"kill {kill + 1}: bronze at {sum(offs)} of {total} offsets")
        assert sum(offs) < total, "finished before the last kill: make the data bigger"
    proc = start(pipe, "final")
    wait_for(done, 240, "the pipeline to read every record", proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0, proc.err_path.read_text()[-3000:]

    bronze = table(store, prefix, "bronze").to_pyarrow_table(columns=["partition", "offset"])
    assert bronze.num_rows == total
    pairs = Counter(zip(bronze["partition"].to_pylist(), bronze["offset"].to_pylist()))
    assert len(pairs) == total and max(pairs.values()) == 1
    ids_ = table(store, prefix, "silver").to_pyarrow_table(columns=["id"])["id"].to_pylist()
    assert sorted(ids_) == sorted(expected_silver_ids(range(total)))
    return prefix
