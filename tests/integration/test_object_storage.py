"""Delta tables on S3: `sluice table` on s3:// URIs against a real S3-compatible server (moto,
started and stopped by scripts/s3.sh), read back by deltalake and Polars with the same endpoint
and options; racing writers (the commit is a conditional PUT, If-None-Match: *), checkpoints,
time travel, VACUUM (one recursive listing), the requests a commit costs, and the URIs that are
refused (Azure: test_azure_storage.py).

Credentials from the AWS default chain, not only static keys: web identity (moto's STS
AssumeRoleWithWebIdentity), a profile of the shared files, the container credentials endpoint and
the EC2 instance metadata (IMDSv2), the last two served by a small HTTP server in this module
with the documented JSON. A recording proxy in front of moto is the oracle there: every S3 request
sluice sends (its own SigV4 requests and Arrow's S3FileSystem's) must be signed with a key the
source issued and carry that key's session token."""
import concurrent.futures
import http.server
import json
import os
import pathlib
import re
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from deltalake import DeltaTable

from object_store_helpers import S3_SECRET as SECRET
from object_store_helpers import RecordingProxy, append, export, ids, rows, run, s3  # noqa: F401


def requests_of(result):
    """The request counts `sluice table append` reports for an object store."""
    m = re.search(r"s3 requests: (\d+) \(list (\d+), get (\d+), head (\d+), put (\d+), delete (\d+)\)",
                  result.stderr)
    assert m, result.stderr
    return dict(zip(["total", "list", "get", "head", "put", "delete"], map(int, m.groups())))


def new_uri():
    return f"s3://lake/tables/{uuid.uuid4().hex[:10]}"


def test_append_files_export_on_s3_read_back_by_deltalake_and_polars(s3):
    uri = new_uri()
    append(s3, uri, rows(0, 100), "--partition-by", "part")
    append(s3, uri, rows(100, 50))
    dt = DeltaTable(uri, storage_options=s3["options"])
    assert dt.version() == 1
    assert ids(dt.to_pyarrow_table()) == list(range(150))
    # Polars 2.1 does not URI-decode `add` paths on object stores (it asks for the key
    # "part=x%20y/..." where the path says "part=x y/..."; locally it does decode): it reads an
    # unpartitioned table here.
    import polars as pl
    flat = new_uri()
    append(s3, flat, rows(0, 30))
    assert sorted(pl.read_delta(flat, storage_options=s3["options"])["id"].to_list()) == list(range(30))
    assert ids(export(s3, uri)) == list(range(150))
    files = run(s3, "table", "files", uri, "--format", "json", "--limit", "1000")
    assert files.returncode == 0, files.stderr
    assert len(files.stdout.splitlines()) == len(dt.file_uris())
    # The objects are where the log says, and nothing else was left beside them.
    keys = {o["Key"] for o in s3["client"].list_objects_v2(Bucket="lake", Prefix=uri[len("s3://lake/"):])["Contents"]}
    assert not [k for k in keys if k.endswith(".tmp") or k.endswith("/")]


def test_the_commit_of_a_taken_version_retries_on_the_next(s3):
    """Another writer's commit already holds version 1: the conditional PUT gets 412, the
    conflict check passes (blind appends) and sluice commits version 2."""
    uri = new_uri()
    append(s3, uri, rows(0, 10))
    key = uri[len("s3://lake/"):] + "/_delta_log/00000000000000000001.json"
    s3["client"].put_object(Bucket="lake", Key=key,
                            Body=b'{"commitInfo":{"timestamp":1,"operation":"WRITE","isBlindAppend":true}}\n')
    result = append(s3, uri, rows(10, 10))
    assert "as version 2" in result.stdout
    dt = DeltaTable(uri, storage_options=s3["options"])
    assert dt.version() == 2 and ids(dt.to_pyarrow_table()) == list(range(20))
    # The other writer's commit is untouched.
    body = s3["client"].get_object(Bucket="lake", Key=key)["Body"].read()
    assert b'"timestamp":1' in body


def test_racing_writers_lose_no_version_and_double_none(s3):
    uri = new_uri()
    append(s3, uri, rows(0, 5))
    writers, each = 4, 3

    def writer(w):
        out = []
        for i in range(each):
            start = 1000 * (w + 1) + 10 * i
            out.append(append(s3, uri, rows(start, 5)).stdout)
        return out

    with concurrent.futures.ThreadPoolExecutor(writers) as pool:
        outputs = [line for lines in pool.map(writer, range(writers)) for line in lines]
    versions = sorted(int(re.search(r"as version (\d+)", o).group(1)) for o in outputs)
    assert versions == list(range(1, writers * each + 1))  # each won exactly one version
    dt = DeltaTable(uri, storage_options=s3["options"])
    assert dt.version() == writers * each
    expected = list(range(5)) + sorted(1000 * (w + 1) + 10 * i + k for w in range(writers)
                                       for i in range(each) for k in range(5))
    assert ids(dt.to_pyarrow_table()) == expected
    assert ids(export(s3, uri)) == expected
    # How many commits lost a race (the server answered 412): not asserted, it depends on
    # scheduling; test_the_commit_of_a_taken_version_retries_on_the_next forces one.
    lost = len(re.findall(rf"PUT /lake/{uri[len('s3://lake/'):]}/_delta_log/\d+\.json [^\n]*\" 412", s3["log"].read_text()))
    print(f"{lost} conditional PUTs lost a race (412) among {writers} writers x {each} appends")


def test_checkpoints_and_time_travel_on_s3(s3):
    uri = new_uri()
    for v in range(7):
        append(s3, uri, rows(10 * v, 10), "--checkpoint-interval", "3")
    prefix = uri[len("s3://lake/"):] + "/_delta_log/"
    names = {o["Key"][len(prefix):] for o in s3["client"].list_objects_v2(Bucket="lake", Prefix=prefix)["Contents"]}
    assert "00000000000000000003.checkpoint.parquet" in names
    assert "00000000000000000006.checkpoint.parquet" in names
    last = s3["client"].get_object(Bucket="lake", Key=prefix + "_last_checkpoint")["Body"].read()
    assert b'"version":6' in last
    # deltalake starts from sluice's checkpoint; both read every version the same.
    for version in (0, 2, 3, 5, 6):
        expected = list(range(10 * (version + 1)))
        assert ids(DeltaTable(uri, version=version, storage_options=s3["options"]).to_pyarrow_table()) == expected
        assert ids(export(s3, uri, "--version", version)) == expected
    describe = run(s3, "table", "describe", uri, "--format", "json")
    assert describe.returncode == 0 and '"checkpoint":6' in describe.stdout
    # By time: a commit's time is its object's LastModified (whole seconds on S3), so the
    # version at version 2's time is the newest one modified in that second (the server's
    # listing is the oracle).
    stamps = {}
    for o in s3["client"].list_objects_v2(Bucket="lake", Prefix=prefix)["Contents"]:
        if o["Key"].endswith(".json"):
            stamps[int(o["Key"][len(prefix):-5])] = int(o["LastModified"].timestamp() * 1000)
    ts = stamps[2]
    at = max(v for v, t in stamps.items() if t <= ts)
    assert ids(export(s3, uri, "--timestamp", ts)) == list(range(10 * (at + 1)))


@pytest.mark.slow  # a volume run (26 commits); the same code path as the other tests under ASan
def test_requests_per_commit_do_not_grow_with_history(s3):
    """With a checkpoint every 5 versions, a commit lists _delta_log from _last_checkpoint on
    (start-after), so its requests stay flat from versions 10-15 to versions 20-25."""
    uri = new_uri()
    counts = {}
    for v in range(26):
        result = append(s3, uri, rows(v, 1), "--checkpoint-interval", "5")
        counts[v] = requests_of(result)
    print("requests per commit:", counts)
    # The same point of the checkpoint cycle costs the same, however long the history.
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
    # The server saw the listings start after the checkpoint (moto's request log).
    log = s3["log"].read_text()
    assert "start-after=" in log


def vacuum_json(store, table, *flags):
    result = run(store, "table", "vacuum", table, "--retain", "0", "hours", "--force", "--format", "json", *flags)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_vacuum_on_s3_deletes_what_it_deletes_on_a_local_copy(s3, tmp_path):
    """The local vacuum (checked against Spark's in test_vacuum.py) is the oracle: the same table
    uploaded to S3 loses the same files, listed recursively there."""
    import pyarrow as pa
    local = tmp_path / "t"
    for part, n in (("a", 3), ("b", 2), ("c", 1)):
        append(None, local, pa.table({"id": pa.array(range(10 * n, 10 * n + n), pa.int64()), "part": [part] * n}),
               "--partition-by", "part")
    for statement in ("DELETE FROM {t} WHERE id = 31", "UPDATE {t} SET id = id + 100 WHERE part = 'b'",
                      "DELETE FROM {t} WHERE part = 'c'"):
        result = run(None, "sql", local, statement.replace("{t}", f"delta.`{local}`"))
        assert result.returncode == 0, result.stderr
    for name in ("stray.parquet", "_change_data/cdc-0.parquet", ".hidden", "_sluice_state/s.arrow",
                 "part=a/.hidden.crc"):
        (local / name).parent.mkdir(exist_ok=True)
        (local / name).write_bytes(b"x")
    uri = new_uri()
    prefix = uri[len("s3://lake/"):] + "/"
    uploaded = sorted(str(p.relative_to(local)) for p in local.rglob("*") if p.is_file())
    for name in uploaded:
        s3["client"].upload_file(str(local / name), "lake", prefix + name)
    past = time.time() - 3600
    for p in local.rglob("*"):
        os.utime(p, (past, past))
    expected = sorted(f["path"] for f in vacuum_json(None, local, "--dry-run")["files"] if not f["isDir"])
    assert "stray.parquet" in expected and len(expected) == 5, expected  # 3 data files + 2 strays

    planned = vacuum_json(s3, uri, "--dry-run")
    assert sorted(f["path"] for f in planned["files"]) == expected
    before = ids(export(s3, uri))
    done = vacuum_json(s3, uri)
    assert done["numDeletedFiles"] == len(expected)
    left = {k[len(prefix):] for k in s3["keys"](prefix)}
    # The maintenance lock's lease chain (table append's and vacuum's lock, a hidden folder
    # VACUUM leaves alone) is sluice's own, not the table's.
    kept = lambda n: not n.startswith("_delta_log/") and not n.startswith("_sluice_maintenance/")
    assert {n for n in left if kept(n)} == {n for n in uploaded if kept(n)} - set(expected)
    assert ids(export(s3, uri)) == before
    assert ids(DeltaTable(uri, storage_options=s3["options"]).to_pyarrow_table()) == before
    old = run(s3, "table", "export", uri, tmp_path / "v0.arrow", "--version", "0")
    assert old.returncode == 1 and "probably removed by VACUUM" in old.stderr, old.stderr


@pytest.mark.parametrize("uri,scheme", [("adl://store/t", "adl")])
def test_adls_gen1_uris_are_refused_as_not_supported_yet(s3, uri, scheme, tmp_path):
    result = run(s3, "table", "describe", uri)
    assert result.returncode == 1
    assert f"{scheme}:// storage is not supported yet" in result.stderr
    assert not (pathlib.Path.cwd() / f"{scheme}:").exists()


def test_plain_http_endpoint_needs_allow_http_and_no_secret_is_echoed(s3):
    refused = run(s3, "table", "describe", "s3://lake/none", extra={"AWS_ALLOW_HTTP": "false"})
    assert refused.returncode == 1
    assert "plain http: set AWS_ALLOW_HTTP=true" in refused.stderr
    missing = run(s3, "table", "describe", "s3://no-such-bucket/t")
    assert missing.returncode == 1
    for result in (refused, missing):
        assert SECRET not in result.stderr + result.stdout


# --- credentials from the AWS default chain ------------------------------------------------------

ROLE = "arn:aws:iam::123456789012:role/lake"
CONTAINER_TOKEN = "container-auth-never-printed-91f3"


@pytest.fixture(scope="module")
def proxy(s3):
    p = RecordingProxy(s3["endpoint"])
    yield p
    p.stop()


class CredentialServer:
    """The ECS/EKS container endpoint (GET /creds with an Authorization header) and the EC2
    instance metadata (IMDSv2: PUT /latest/api/token, then the role and its credentials with the
    session token). Each fetch issues a new key; `lifetime` seconds until its Expiration."""

    def __init__(self):
        self.issued = {}  # access key id -> session token
        self.fetches = []  # "container" / "imds"
        self.lifetime = 3600
        self.fail = None  # an HTTP status to answer instead of credentials
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def reply(self, status, body):
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def credentials(self, kind):
                if server.fail:
                    return self.reply(server.fail, "no")
                n = len(server.fetches)
                server.fetches.append(kind)
                key, token = f"ASIA{kind.upper()}{n:04d}", f"session-{kind}-{n}-{uuid.uuid4().hex}"
                server.issued[key] = token
                expires = datetime.now(timezone.utc) + timedelta(seconds=server.lifetime)
                self.reply(200, json.dumps({"Code": "Success", "AccessKeyId": key,
                                            "SecretAccessKey": f"secret-{n}-{uuid.uuid4().hex}", "Token": token,
                                            "Expiration": expires.strftime("%Y-%m-%dT%H:%M:%SZ")}))

            def do_PUT(self):
                if self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
                    return self.reply(200, "imds-session-token")
                self.reply(400, "bad token request")

            def do_GET(self):
                if self.path == "/creds":
                    if self.headers.get("Authorization") != CONTAINER_TOKEN:
                        return self.reply(403, "wrong authorization")
                    return self.credentials("container")
                if self.headers.get("X-aws-ec2-metadata-token") != "imds-session-token":
                    return self.reply(401, "IMDSv2 session token missing")
                if self.path == "/latest/meta-data/iam/security-credentials/":
                    return self.reply(200, "lake-role")
                if self.path == "/latest/meta-data/iam/security-credentials/lake-role":
                    return self.credentials("imds")
                self.reply(404, "not found")

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def creds_server():
    server = CredentialServer()
    yield server
    server.server.shutdown()
    server.server.server_close()


def base_env(proxy, tmp_path):
    """Only the endpoint: no keys, no profile from the home folder, no instance metadata."""
    return {"AWS_ENDPOINT_URL": proxy.endpoint, "AWS_ALLOW_HTTP": "true", "AWS_REGION": "us-east-1",
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
            "AWS_CONFIG_FILE": str(tmp_path / "no-config"), "AWS_EC2_METADATA_DISABLED": "true"}


def s3_requests(proxy, since):
    """(method, path, access key id, session token) of each signed S3 request after `since`."""
    out = []
    for r in proxy.requests[since:]:
        m = re.match(r"AWS4-HMAC-SHA256 Credential=([^/]+)/", r["headers"].get("authorization", ""))
        if m:
            out.append((r["method"], r["path"], m.group(1), r["headers"].get("x-amz-security-token")))
    return out


def assert_signed_by(requests, issued):
    """Every request signed with an issued key and that key's own session token, both through
    sluice's SigV4 client (the commit) and Arrow's S3FileSystem (the data file)."""
    assert requests
    for method, path, key, token in requests:
        assert key in issued, (method, path, key)
        assert token == issued[key], (method, path, key)
    assert any(m == "PUT" and "_delta_log/" in p and p.split("?")[0].endswith(".json") for m, p, _, _ in requests)
    assert any(m == "PUT" and ".parquet" in p for m, p, _, _ in requests), requests


def sts_issued(proxy, since):
    """Access key id -> session token of every AssumeRoleWithWebIdentity answer after `since`."""
    out = {}
    for r in proxy.requests[since:]:
        if b"Action=AssumeRoleWithWebIdentity" in r["body"] and r["status"] == 200:
            text = r["response"].decode()
            out[re.search("<AccessKeyId>(.*?)</AccessKeyId>", text).group(1)] = \
                re.search("<SessionToken>(.*?)</SessionToken>", text).group(1)
    return out


def table_uri():
    return f"s3://lake/creds/{uuid.uuid4().hex[:10]}"


def test_web_identity_assumes_the_role_at_sts_and_signs_with_its_session(s3, proxy, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJsYWtlIn0.c2lnbmF0dXJl\n")
    env = {**base_env(proxy, tmp_path), "AWS_WEB_IDENTITY_TOKEN_FILE": str(token_file), "AWS_ROLE_ARN": ROLE,
           "AWS_ROLE_SESSION_NAME": "sluice-test"}
    uri, since = table_uri(), len(proxy.requests)
    append(None, uri, rows(0, 20), env=env)
    issued = sts_issued(proxy, since)
    assert len(issued) == 1  # one AssumeRoleWithWebIdentity per process: the session lasts an hour
    sts = [r for r in proxy.requests[since:] if b"AssumeRoleWithWebIdentity" in r["body"]][0]
    assert b"RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Flake" in sts["body"]
    assert b"RoleSessionName=sluice-test" in sts["body"]
    assert_signed_by(s3_requests(proxy, since), issued)
    assert ids(DeltaTable(uri, storage_options=s3["options"]).to_pyarrow_table()) == list(range(20))


def test_profile_from_the_shared_files_with_its_session_token_and_region(s3, proxy, tmp_path):
    (tmp_path / "credentials").write_text("[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = x\n"
                                          "[lake]\naws_access_key_id = ASIAPROFILE\n"
                                          "aws_secret_access_key = profile-secret-never-printed\n"
                                          "aws_session_token = profile-session\n")
    (tmp_path / "config").write_text("[profile lake]\nregion = us-east-1\n")
    env = {**base_env(proxy, tmp_path), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
           "AWS_CONFIG_FILE": str(tmp_path / "config"), "AWS_PROFILE": "lake"}
    del env["AWS_REGION"]
    uri, since = table_uri(), len(proxy.requests)
    append(None, uri, rows(0, 10), env=env)
    requests = s3_requests(proxy, since)
    assert_signed_by(requests, {"ASIAPROFILE": "profile-session"})
    # SigV4's scope names the profile's region.
    assert all("/us-east-1/s3/" in r["headers"]["authorization"] for r in proxy.requests[since:]
               if "authorization" in r["headers"])
    missing = run(None, "table", "describe", uri, env={**env, "AWS_PROFILE": "nope"})
    assert missing.returncode != 0
    assert "AWS profile 'nope' (AWS_PROFILE) is in neither" in missing.stderr
    assert "profile-secret-never-printed" not in missing.stderr + missing.stdout


def test_profile_assuming_a_role_with_its_source_profile_keys(s3, proxy, tmp_path):
    (tmp_path / "config").write_text(f"[profile lake]\nrole_arn = {ROLE}\nsource_profile = base\n"
                                     "role_session_name = sluice-profile\nregion = us-east-1\n"
                                     "[profile base]\naws_access_key_id = AKIABASE\n"
                                     "aws_secret_access_key = base-secret-never-printed\n")
    env = {**base_env(proxy, tmp_path), "AWS_CONFIG_FILE": str(tmp_path / "config"), "AWS_PROFILE": "lake"}
    uri, since = table_uri(), len(proxy.requests)
    append(None, uri, rows(0, 10), env=env)
    sts = [r for r in proxy.requests[since:] if b"Action=AssumeRole&" in r["body"]]
    assert len(sts) == 1 and sts[0]["status"] == 200
    # The AssumeRole request is signed (SigV4 for the sts service) with the source profile's key.
    assert re.match(r"AWS4-HMAC-SHA256 Credential=AKIABASE/\d+/us-east-1/sts/aws4_request",
                    sts[0]["headers"]["authorization"])
    assert b"RoleSessionName=sluice-profile" in sts[0]["body"]
    text = sts[0]["response"].decode()
    issued = {re.search("<AccessKeyId>(.*?)</AccessKeyId>", text).group(1):
              re.search("<SessionToken>(.*?)</SessionToken>", text).group(1)}
    assert_signed_by([r for r in s3_requests(proxy, since) if r[1] != "/"], issued)  # all but STS's
    assert ids(DeltaTable(uri, storage_options=s3["options"]).to_pyarrow_table()) == list(range(10))


def test_container_endpoint_with_its_authorization_token_file(s3, proxy, creds_server, tmp_path):
    (tmp_path / "auth").write_text(CONTAINER_TOKEN + "\n")
    env = {**base_env(proxy, tmp_path), "AWS_CONTAINER_CREDENTIALS_FULL_URI": creds_server.endpoint + "/creds",
           "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": str(tmp_path / "auth")}
    uri, since, fetched = table_uri(), len(proxy.requests), len(creds_server.fetches)
    append(None, uri, rows(0, 10), env=env)
    assert creds_server.fetches[fetched:] == ["container"]
    assert_signed_by(s3_requests(proxy, since), creds_server.issued)
    (tmp_path / "auth").write_text("wrong-token")
    refused = run(None, "table", "describe", uri, env=env)
    assert refused.returncode != 0
    assert (f"cannot get S3 credentials from the container credentials endpoint {creds_server.endpoint}/creds"
            in refused.stderr), refused.stderr
    assert "answered HTTP 403" in refused.stderr
    assert "wrong-token" not in refused.stderr and CONTAINER_TOKEN not in refused.stderr


def test_instance_metadata_imdsv2_and_credentials_refreshed_before_expiry(s3, proxy, creds_server, tmp_path):
    env = {**base_env(proxy, tmp_path), "AWS_EC2_METADATA_SERVICE_ENDPOINT": creds_server.endpoint}
    del env["AWS_EC2_METADATA_DISABLED"]
    uri, since, fetched = table_uri(), len(proxy.requests), len(creds_server.fetches)
    append(None, uri, rows(0, 10), env=env)
    assert creds_server.fetches[fetched:] == ["imds"]
    assert_signed_by(s3_requests(proxy, since), creds_server.issued)
    # Credentials that expire at once are fetched again before each use: every request is
    # signed with a fresh key, through both request paths (Arrow's filesystem made again).
    creds_server.lifetime = 0
    since, fetched = len(proxy.requests), len(creds_server.fetches)
    try:
        append(None, uri, rows(10, 10), env=env)
    finally:
        creds_server.lifetime = 3600
    requests = s3_requests(proxy, since)
    assert_signed_by(requests, creds_server.issued)
    assert len({key for _, _, key, _ in requests}) >= 3, requests
    assert len(creds_server.fetches) - fetched >= 3
    assert ids(DeltaTable(uri, storage_options=s3["options"]).to_pyarrow_table()) == list(range(20))


def test_without_any_source_the_error_lists_where_it_looked(proxy, creds_server, tmp_path):
    env = {**base_env(proxy, tmp_path), "AWS_EC2_METADATA_SERVICE_ENDPOINT": creds_server.endpoint}
    del env["AWS_EC2_METADATA_DISABLED"]
    creds_server.fail = 404
    try:
        start = time.monotonic()
        r = run(None, "table", "describe", table_uri(), env=env)
    finally:
        creds_server.fail = None
    assert r.returncode != 0
    assert "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" in r.stderr, r.stderr
    assert f"the EC2 instance metadata at {creds_server.endpoint}" in r.stderr
    assert "set AWS_EC2_METADATA_DISABLED=true off EC2" in r.stderr
    assert time.monotonic() - start < 30
