"""Unit tests of the collection's modules s3_bucket and s3_object (plugins/modules/).

The pure parts are tested directly; the S3 behaviour against moto's in-memory S3, by
calling the modules' core functions with a boto3 client and main() with module args.
"""

from __future__ import annotations

import hashlib
import io
import json

import pytest

boto3 = pytest.importorskip("boto3")
moto = pytest.importorskip("moto")
pytest.importorskip("ansible.module_utils.basic")

from boto3.s3.transfer import TransferConfig  # noqa: E402

from ansible_collections.customer_streaming.pipeline.plugins.modules import s3_bucket, s3_object  # noqa: E402

REGION = "us-east-1"


@pytest.fixture
def client(monkeypatch):
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with moto.mock_aws():
        yield s3_object.make_client(None, REGION, "testing", "testing")


@pytest.fixture
def csv_file(tmp_path):
    path = tmp_path / "customers.csv"
    path.write_bytes(b"customer_id,name\n" + b"".join(b"%d,name-%d\n" % (i, i) for i in range(1000)))
    return path


# --- pure functions -----------------------------------------------------------------


def test_plan_bucket_covers_every_state():
    assert s3_bucket.plan_bucket(False, "present") == "create"
    assert s3_bucket.plan_bucket(True, "present") == "none"
    assert s3_bucket.plan_bucket(True, "absent") == "delete"
    assert s3_bucket.plan_bucket(False, "absent") == "none"
    with pytest.raises(ValueError):
        s3_bucket.plan_bucket(True, "gone")


def test_bucket_diff_shows_before_and_after():
    diff = s3_bucket.bucket_diff("customers", False, "create")
    assert diff["before"] == "bucket customers: absent\n"
    assert diff["after"] == "bucket customers: present\n"
    assert s3_bucket.bucket_diff("customers", True, "none")["after"] == "bucket customers: present\n"


def test_file_md5_matches_hashlib(csv_file):
    assert s3_object.file_md5(str(csv_file)) == hashlib.md5(csv_file.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("etag", "expected"),
    [
        ('"42D99F77079A56899E5DDAA8A6196CDA"', "42d99f77079a56899e5ddaa8a6196cda"),
        ("42d99f77079a56899e5ddaa8a6196cda", "42d99f77079a56899e5ddaa8a6196cda"),
        ('"191a9b95dc0ec4b217b1dcb654c0df39-3"', None),
        ("", None),
        (None, None),
        ('"not-a-md5"', None),
    ],
)
def test_etag_md5_accepts_only_plain_md5(etag, expected):
    assert s3_object.etag_md5(etag) == expected


MD5 = "42d99f77079a56899e5ddaa8a6196cda"


@pytest.mark.parametrize(
    ("remote", "expected"),
    [
        (None, "missing"),
        ({"size": 13999, "etag": '"%s"' % MD5}, "size"),
        ({"size": 14000, "etag": '"%s-2"' % MD5}, "multipart"),
        ({"size": 14000, "etag": '"00000000000000000000000000000000"'}, "content"),
        ({"size": 14000, "etag": '"%s"' % MD5.upper()}, "none"),
    ],
)
def test_upload_reason(remote, expected):
    assert s3_object.upload_reason(14000, MD5, remote) == expected


def test_object_diff_names_sizes_and_hashes():
    diff = s3_object.object_diff("s3://b/k", {"size": 3, "etag": '"abc"'}, 4, MD5)
    assert diff["before"] == "object s3://b/k\nsize: 3\netag: abc\n"
    assert diff["after"] == "object s3://b/k\nsize: 4\netag: %s\n" % MD5
    assert s3_object.object_diff("s3://b/k", None, 4, MD5)["before"] == "object s3://b/k: absent\n"


# --- s3_bucket against moto ---------------------------------------------------------


def test_ensure_bucket_creates_once(client):
    first = s3_bucket.ensure_bucket(client, "customers")
    second = s3_bucket.ensure_bucket(client, "customers")
    assert (first["changed"], first["action"]) == (True, "create")
    assert (second["changed"], second["action"]) == (False, "none")
    assert [b["Name"] for b in client.list_buckets()["Buckets"]] == ["customers"]


def test_ensure_bucket_check_mode_changes_nothing(client):
    result = s3_bucket.ensure_bucket(client, "customers", check_mode=True)
    assert (result["changed"], result["action"], result["exists"]) == (True, "create", True)
    assert client.list_buckets()["Buckets"] == []


def test_ensure_bucket_absent_deletes_empty_and_refuses_full(client):
    client.create_bucket(Bucket="scratch")
    client.create_bucket(Bucket="full")
    client.put_object(Bucket="full", Key="k", Body=b"x")
    assert s3_bucket.ensure_bucket(client, "scratch", state="absent")["changed"] is True
    assert s3_bucket.ensure_bucket(client, "scratch", state="absent")["changed"] is False
    with pytest.raises(s3_bucket.S3ModuleError, match="bucket full is not empty"):
        s3_bucket.ensure_bucket(client, "full", state="absent")
    assert [b["Name"] for b in client.list_buckets()["Buckets"]] == ["full"]


# --- s3_object against moto ---------------------------------------------------------


def test_ensure_object_uploads_then_is_idempotent(client, csv_file):
    client.create_bucket(Bucket="customers")
    md5 = hashlib.md5(csv_file.read_bytes()).hexdigest()
    first = s3_object.ensure_object(client, str(csv_file), "customers", "incoming/customers.csv", "text/csv")
    second = s3_object.ensure_object(client, str(csv_file), "customers", "incoming/customers.csv", "text/csv")
    assert (first["changed"], first["reason"], first["etag"], first["md5"]) == (True, "missing", md5, md5)
    assert (second["changed"], second["reason"], second["etag"]) == (False, "none", md5)
    assert first["url"] == "s3://customers/incoming/customers.csv"
    obj = client.get_object(Bucket="customers", Key="incoming/customers.csv")
    assert obj["Body"].read() == csv_file.read_bytes()
    assert obj["ContentType"] == "text/csv"


def test_ensure_object_check_mode_reports_without_uploading(client, csv_file):
    client.create_bucket(Bucket="customers")
    result = s3_object.ensure_object(client, str(csv_file), "customers", "k.csv", check_mode=True)
    assert (result["changed"], result["reason"], result["etag"]) == (True, "missing", "")
    assert result["diff"]["before"] == "object s3://customers/k.csv: absent\n"
    assert client.list_objects_v2(Bucket="customers")["KeyCount"] == 0


def test_ensure_object_replaces_changed_content_of_same_size(client, csv_file):
    client.create_bucket(Bucket="customers")
    data = csv_file.read_bytes()
    client.put_object(Bucket="customers", Key="k.csv", Body=data[:-2] + b"X\n")
    result = s3_object.ensure_object(client, str(csv_file), "customers", "k.csv")
    assert (result["changed"], result["reason"]) == (True, "content")
    assert client.get_object(Bucket="customers", Key="k.csv")["Body"].read() == data


def test_ensure_object_replaces_multipart_object_once(client, tmp_path):
    client.create_bucket(Bucket="customers")
    path = tmp_path / "big.bin"
    path.write_bytes(b"y" * (5 * 1024 * 1024 + 1))
    client.upload_fileobj(
        io.BytesIO(path.read_bytes()), "customers", "big.bin",
        Config=TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024),
    )
    assert client.head_object(Bucket="customers", Key="big.bin")["ETag"].endswith('-2"')
    first = s3_object.ensure_object(client, str(path), "customers", "big.bin")
    second = s3_object.ensure_object(client, str(path), "customers", "big.bin")
    assert (first["changed"], first["reason"]) == (True, "multipart")
    assert (second["changed"], second["reason"]) == (False, "none")


def test_ensure_object_fails_clearly_without_bucket_or_file(client, csv_file, tmp_path):
    with pytest.raises(s3_object.S3ModuleError, match="bucket nope does not exist"):
        s3_object.ensure_object(client, str(csv_file), "nope", "k.csv")
    assert s3_object.ensure_object(client, str(csv_file), "nope", "k.csv", check_mode=True)["reason"] == "missing"
    with pytest.raises(s3_object.S3ModuleError, match="is not a file"):
        s3_object.ensure_object(client, str(tmp_path / "absent.csv"), "nope", "k.csv")


# --- main(): argument handling, check mode, diff, no_log --------------------------


def _run_main(module, args, capsys):
    patch_module_args = pytest.importorskip("ansible.module_utils.testing").patch_module_args
    with patch_module_args(args), pytest.raises(SystemExit):
        module.main()
    return json.loads(capsys.readouterr().out)


def test_s3_object_main_check_and_diff_then_upload(client, csv_file, capsys):
    client.create_bucket(Bucket="customers")
    args = {
        "src": str(csv_file), "bucket": "customers", "key": "incoming/customers.csv",
        "access_key_id": "testing", "secret_access_key": "testing",
    }
    checked = _run_main(s3_object, dict(args, _ansible_check_mode=True, _ansible_diff=True), capsys)
    assert (checked["changed"], checked["reason"]) == (True, "missing")
    assert checked["diff"]["after"].startswith("object s3://customers/incoming/customers.csv\n")
    uploaded = _run_main(s3_object, args, capsys)
    again = _run_main(s3_object, args, capsys)
    assert (uploaded["changed"], again["changed"]) == (True, False)
    assert "diff" not in again


def test_s3_bucket_main_hides_secret_and_fails_on_bad_endpoint(capsys):
    result = _run_main(
        s3_bucket,
        {
            "name": "customers", "endpoint_url": "http://127.0.0.1:9",
            "access_key_id": "testing", "secret_access_key": "s3cr3t-value",
        },
        capsys,
    )
    assert result["failed"] is True
    assert "customers" in result["msg"]
    assert "s3cr3t-value" not in json.dumps(result)
