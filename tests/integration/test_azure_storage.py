"""Delta tables on Azure Blob Storage: `sluice table` on az:// and abfss:// URIs against Azurite
(started and stopped by scripts/azurite.sh), read back by deltalake and Polars with the same
emulator options (delta-rs keys); racing writers (the commit is Put Blob with If-None-Match: *),
checkpoints, time travel, credentials (account key, SAS token, connection string, a service
principal's Azure AD tokens or workload identity against Azurite over https with a test CA, also
for a pipeline run) and the errors that name what to set without echoing a secret. The blobs are checked with a small
independent SharedKey client (below), not with sluice."""
import base64
import concurrent.futures
import pathlib
import re
import tempfile
import urllib.parse
import uuid

import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from conftest import write_pipeline
from test_pipeline_on_s3 import produce_json

from object_store_helpers import ACCOUNT, AD_CLIENT, AD_FEDERATED_TOKEN, AD_TENANT, append, az, az_ad, export, ids, rows, run  # noqa: F401
from object_store_helpers import AZURE_KEY as KEY

# The tests' "secret": a wrong key, never to be printed.
WRONG_KEY = base64.b64encode(b"s3cr3t-never-printed-7c1e-azure!").decode()


def new_table():
    """(az:// URI, blob prefix in 'lake')."""
    name = f"tables/{uuid.uuid4().hex[:10]}"
    return f"az://lake/{name}", name


def test_append_files_export_history_on_azure_read_back_by_deltalake_and_polars(az):
    uri, prefix = new_table()
    first = append(az, uri, rows(0, 100), "--partition-by", "part")
    assert re.search(r"az requests: \d+ \(list", first.stderr), first.stderr
    append(az, uri, rows(100, 50))
    dt = DeltaTable(uri, storage_options=az["options"])
    assert dt.version() == 1
    assert ids(dt.to_pyarrow_table()) == list(range(150))
    assert ids(export(az, uri)) == list(range(150))
    files = run(az, "table", "files", uri, "--format", "json", "--limit", "1000")
    assert files.returncode == 0, files.stderr
    assert len(files.stdout.splitlines()) == len(dt.file_uris())
    history = run(az, "table", "history", uri)
    assert history.returncode == 0, history.stderr
    assert len([line for line in history.stdout.splitlines() if re.match(r"\s*[01]\s", line)]) == 2, history.stdout
    # Every blob is a data file the log names or a log object; nothing half-written beside them.
    names = az["blobs"].list("lake", prefix + "/")
    data = {n for n in names if n.endswith(".parquet") and "/_delta_log/" not in n}
    assert len(data) == len(dt.file_uris())
    assert sorted(n[len(prefix) + len("/_delta_log/"):] for n in names if "/_delta_log/" in n) == [
        "00000000000000000000.json", "00000000000000000001.json"]
    # Polars reads an unpartitioned table (it does not decode partition paths on object stores,
    # test_object_storage.py).
    import polars as pl
    flat, _ = new_table()
    append(az, flat, rows(0, 30))
    assert sorted(pl.read_delta(flat, storage_options=az["options"])["id"].to_list()) == list(range(30))


def test_abfss_uri_names_the_same_table_as_az(az):
    uri, prefix = new_table()
    append(az, uri, rows(0, 20))
    # delta-rs's spelling: the account in the host; the emulator's endpoint from the environment.
    abfss = f"abfss://lake@{ACCOUNT}.dfs.core.windows.net/{prefix}"
    append(az, abfss, rows(20, 20))
    assert ids(export(az, uri)) == list(range(40))
    assert DeltaTable(uri, storage_options=az["options"]).version() == 1
    other = run(az, "table", "describe", f"abfss://lake@otheraccount.dfs.core.windows.net/{prefix}",
                env={**az["env"], "AZURE_STORAGE_ACCOUNT_NAME": ACCOUNT})
    assert other.returncode == 1
    assert "names account 'otheraccount' but AZURE_STORAGE_ACCOUNT_NAME" in other.stderr


def test_the_commit_of_a_taken_version_retries_on_the_next(az):
    """Another writer's commit already holds version 1: Put Blob with If-None-Match: * gets 409,
    the conflict check passes (blind appends) and sluice commits version 2."""
    uri, prefix = new_table()
    append(az, uri, rows(0, 10))
    name = prefix + "/_delta_log/00000000000000000001.json"
    other = b'{"commitInfo":{"timestamp":1,"operation":"WRITE","isBlindAppend":true}}\n'
    assert az["blobs"].put("lake", name, other) == 201
    # Azurite honours If-None-Match: * on Put Blob (what the commit relies on).
    assert az["blobs"].put("lake", name, b"second") == 409
    result = append(az, uri, rows(10, 10))
    assert "as version 2" in result.stdout
    dt = DeltaTable(uri, storage_options=az["options"])
    assert dt.version() == 2 and ids(dt.to_pyarrow_table()) == list(range(20))
    assert az["blobs"].get("lake", name) == other  # the other writer's commit is untouched


def test_racing_writers_lose_no_version_and_double_none(az):
    uri, _ = new_table()
    append(az, uri, rows(0, 5))
    writers, each = 4, 3

    def writer(w):
        return [append(az, uri, rows(1000 * (w + 1) + 10 * i, 5)).stdout for i in range(each)]

    with concurrent.futures.ThreadPoolExecutor(writers) as pool:
        outputs = [line for lines in pool.map(writer, range(writers)) for line in lines]
    versions = sorted(int(re.search(r"as version (\d+)", o).group(1)) for o in outputs)
    assert versions == list(range(1, writers * each + 1))  # each won exactly one version
    dt = DeltaTable(uri, storage_options=az["options"])
    assert dt.version() == writers * each
    expected = list(range(5)) + sorted(1000 * (w + 1) + 10 * i + k for w in range(writers)
                                       for i in range(each) for k in range(5))
    assert ids(dt.to_pyarrow_table()) == expected
    assert ids(export(az, uri)) == expected


def test_checkpoints_and_time_travel_on_azure(az):
    uri, prefix = new_table()
    for v in range(7):
        append(az, uri, rows(10 * v, 10), "--checkpoint-interval", "3")
    log = prefix + "/_delta_log/"
    names = {n[len(log):]: meta for n, meta in az["blobs"].list("lake", log).items()}
    assert "00000000000000000003.checkpoint.parquet" in names
    assert "00000000000000000006.checkpoint.parquet" in names
    assert b'"version":6' in az["blobs"].get("lake", log + "_last_checkpoint")
    # deltalake starts from sluice's checkpoint; both read every version the same.
    for version in (0, 2, 3, 5, 6):
        expected = list(range(10 * (version + 1)))
        assert ids(DeltaTable(uri, version=version, storage_options=az["options"]).to_pyarrow_table()) == expected
        assert ids(export(az, uri, "--version", version)) == expected
    describe = run(az, "table", "describe", uri, "--format", "json")
    assert describe.returncode == 0 and '"checkpoint":6' in describe.stdout
    # By time: a commit's time is its blob's Last-Modified (whole seconds), so the version at
    # version 2's time is the newest one modified in that second (the listing is the oracle).
    stamps = {int(n[:-5]): ms for n, (_, ms) in names.items() if n.endswith(".json")}
    at = max(v for v, t in stamps.items() if t <= stamps[2])
    assert ids(export(az, uri, "--timestamp", stamps[2])) == list(range(10 * (at + 1)))


def test_sas_token_and_connection_string_reach_the_same_table(az):
    uri, _ = new_table()
    endpoint = f"http://127.0.0.1:{az['port']}/{ACCOUNT}"
    sas = {"AZURE_STORAGE_ACCOUNT_NAME": ACCOUNT, "AZURE_STORAGE_SAS_TOKEN": az["blobs"].account_sas(),
           "AZURE_STORAGE_ENDPOINT": endpoint, "AZURE_ALLOW_HTTP": "true"}
    append(az, uri, rows(0, 10), env=sas)
    connection = {"AZURE_STORAGE_CONNECTION_STRING":
                  f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};BlobEndpoint={endpoint};"}
    append(az, uri, rows(10, 10), env=connection)
    assert ids(export(az, uri)) == list(range(20))
    assert ids(DeltaTable(uri, storage_options=az["options"]).to_pyarrow_table()) == list(range(20))
    # A read-only SAS token reads but cannot commit, and says so.
    read_only = dict(sas, AZURE_STORAGE_SAS_TOKEN=az["blobs"].account_sas("rl"))
    assert ids(export(az, uri, env=read_only)) == list(range(20))
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "in.parquet"
        pq.write_table(rows(20, 10), path)
        refused = run(az, "table", "append", uri, path, env=read_only)
    assert refused.returncode == 1
    assert "403" in refused.stderr and "SAS token's permissions" in refused.stderr, refused.stderr
    # Arrow's message quotes the request URL: the token's signature is redacted from it.
    signature = urllib.parse.parse_qs(read_only["AZURE_STORAGE_SAS_TOKEN"])["sig"][0]
    for text in (signature, urllib.parse.quote(signature, safe=""), read_only["AZURE_STORAGE_SAS_TOKEN"]):
        assert text not in refused.stderr + refused.stdout


def test_errors_name_what_to_set_and_never_echo_a_secret(az):
    endpoint = f"http://127.0.0.1:{az['port']}/{ACCOUNT}"
    base = {"AZURE_STORAGE_ACCOUNT_NAME": ACCOUNT, "AZURE_STORAGE_ENDPOINT": endpoint, "AZURE_ALLOW_HTTP": "true"}
    cases = {
        "plain http: set AZURE_ALLOW_HTTP=true": dict(base, AZURE_STORAGE_ACCOUNT_KEY=WRONG_KEY, AZURE_ALLOW_HTTP="false"),
        "HTTP 403": dict(base, AZURE_STORAGE_ACCOUNT_KEY=WRONG_KEY),
        "no Azure credentials for account 'devstoreaccount1': set AZURE_STORAGE_ACCOUNT_KEY": dict(base),
        "is not base64": dict(base, AZURE_STORAGE_ACCOUNT_KEY="not base64 s3cr3t-never-printed-7c1e"),
        "no Azure storage account: set AZURE_STORAGE_ACCOUNT_NAME": {"AZURE_STORAGE_ACCOUNT_KEY": WRONG_KEY},
    }
    for expected, env in cases.items():
        result = run(az, "table", "describe", "az://lake/tables/none", env=env)
        assert result.returncode == 1, (expected, result.stdout)
        assert expected in result.stderr, (expected, result.stderr)
        assert WRONG_KEY not in result.stderr + result.stdout
        assert "s3cr3t-never-printed" not in result.stderr + result.stdout
    missing = run(az, "table", "describe", "az://no-such-container/t")
    assert missing.returncode == 1 and "ContainerNotFound" in missing.stderr, missing.stderr


@pytest.mark.parametrize("uri,message", [
    ("az:///t", "names no container"),
    ("abfss://lake@acct.example.com/t", "must be <account>.dfs.core.windows.net"),
    ("adl://store/t", "adl:// storage is not supported yet"),
])
def test_malformed_and_unsupported_azure_uris_are_refused(az, uri, message):
    result = run(az, "table", "describe", uri)
    assert result.returncode == 1
    assert message in result.stderr, result.stderr


def test_a_service_principal_writes_and_reads_over_https_with_a_private_ca(az_ad):
    """No account key anywhere: sluice's commit path sends its own token (Bearer), Arrow's data
    files the Azure SDK's, both from the client-credentials flow; the CA only in SSL_CERT_FILE."""
    uri, prefix = new_table()
    before = len(az_ad["tokens"].requests)
    append(az_ad, uri, rows(0, 100), "--partition-by", "part")
    append(az_ad, uri, rows(100, 50))
    dt = DeltaTable(uri, storage_options=az_ad["options"])  # deltalake with its own bearer token
    assert dt.version() == 1 and ids(dt.to_pyarrow_table()) == list(range(150))
    assert ids(export(az_ad, uri)) == list(range(150))
    names = az_ad["blobs"].list("lake", prefix + "/")  # SharedKey: the oracle of what is stored
    assert sorted(n for n in names if "/_delta_log/" in n) == [
        f"{prefix}/_delta_log/00000000000000000000.json", f"{prefix}/_delta_log/00000000000000000001.json"]
    assert len([n for n in names if n.endswith(".parquet")]) == len(dt.file_uris())
    asked = az_ad["tokens"].requests[before:]
    # Each of the three runs: one token for sluice's requests, one for the Azure SDK's.
    assert len(asked) == 6, asked
    assert set(asked) == {(AD_TENANT, AD_CLIENT, "https://storage.azure.com/.default", True)}


def test_a_wrong_client_secret_or_an_untrusted_ca_names_the_cause_not_the_secret(az_ad):
    wrong = "wrong-s3cr3t-never-printed-91d0"
    refused = run(az_ad, "table", "describe", "az://lake/tables/none", extra={"AZURE_CLIENT_SECRET": wrong})
    assert refused.returncode == 1
    assert "refused the client credentials of client id 'sluice-test-app'" in refused.stderr, refused.stderr
    assert "HTTP 401 invalid_client: AADSTS7000215" in refused.stderr and "check AZURE_CLIENT_SECRET" in refused.stderr
    untrusted = run(az_ad, "table", "describe", "az://lake/tables/none", extra={"SSL_CERT_FILE": ""})
    assert untrusted.returncode == 1
    assert "certificate is not trusted" in untrusted.stderr and "set SSL_CERT_FILE" in untrusted.stderr, untrusted.stderr
    for result in (refused, untrusted):
        assert wrong not in result.stdout + result.stderr and az_ad["secret"] not in result.stdout + result.stderr


def test_workload_identity_takes_the_federated_token_file_instead_of_a_secret(az_ad, tmp_path):
    token_file = tmp_path / "azure-identity-token"
    token_file.write_text(AD_FEDERATED_TOKEN)  # as Kubernetes projects it: no newline
    env = {k: v for k, v in az_ad["env"].items() if k != "AZURE_CLIENT_SECRET"}
    env["AZURE_FEDERATED_TOKEN_FILE"] = str(token_file)
    uri, _ = new_table()
    before = len(az_ad["tokens"].requests)
    append(az_ad, uri, rows(0, 20), env=env)
    assert ids(DeltaTable(uri, storage_options=az_ad["options"]).to_pyarrow_table()) == list(range(20))
    asked = az_ad["tokens"].requests[before:]
    assert len(asked) == 2 and all(ok for *_, ok in asked), asked  # sluice's and the Azure SDK's
    token_file.write_text("eyJ.a-revoked-token.sig")
    refused = run(az_ad, "table", "describe", uri, env=env)
    assert refused.returncode == 1
    assert f"check AZURE_FEDERATED_TOKEN_FILE ({token_file}" in refused.stderr, refused.stderr
    assert "a-revoked-token" not in refused.stderr + refused.stdout


def test_a_service_principal_in_storage_options_runs_a_pipeline(az_ad, tmp_path, bootstrap, new_topic):
    """azure_tenant_id, azure_client_id, azure_client_secret and azure_authority_host in
    pipeline.yaml (in the environment only SSL_CERT_FILE and AZURE_AUTHORITY_HOST, which Arrow's
    Azure SDK reads only from there): Azurite over https takes the tokens. Without the variable
    the option is refused, naming it, before any token is asked for."""
    topic = new_topic(1)
    prefix = f"ad-{uuid.uuid4().hex[:8]}"
    pipe = write_pipeline(tmp_path / "p", f"name: ad\nstorage: az://lake/{prefix}\nstorage_options:\n{az_ad['yaml']}"
                          f"kafka:\n  default:\n    bootstrap.servers: \"{bootstrap}\"\n")
    (pipe / "t.sql").write_text(f"CREATE OR REFRESH STREAMING TABLE t AS SELECT * FROM STREAM "
                                f"read_kafka(topic => '{topic}', starting_offsets => 'earliest');\n")
    produce_json(bootstrap, topic, [{"i": i} for i in range(5)])
    before = len(az_ad["tokens"].requests)
    refused = run(None, "run", pipe, "--once", extra={"SSL_CERT_FILE": str(az_ad["ca"])})
    assert refused.returncode != 0
    assert (f"storage option azure_authority_host ('{az_ad['tokens'].url.rstrip('/')}')" in refused.stderr
            and f"set AZURE_AUTHORITY_HOST={az_ad['tokens'].url.rstrip('/')} in sluice's environment"
            in refused.stderr), refused.stderr
    assert len(az_ad["tokens"].requests) == before and az_ad["secret"] not in refused.stdout + refused.stderr
    r = run(None, "run", pipe, "--once",
            extra={"SSL_CERT_FILE": str(az_ad["ca"]), "AZURE_AUTHORITY_HOST": az_ad["tokens"].url})
    assert r.returncode == 0, r.stderr
    assert DeltaTable(f"az://lake/{prefix}/tables/t", storage_options=az_ad["options"]).to_pyarrow_table().num_rows == 5
    assert az_ad["secret"] not in r.stdout + r.stderr
