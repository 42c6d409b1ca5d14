#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Ansible module s3_object: ensure a local file is uploaded to s3://bucket/key."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: s3_object
short_description: Ensure a local file is uploaded to an S3-compatible object store
description:
  - Uploads O(src) to C(s3://bucket/key) through the S3 API with C(boto3), signature v4
    and path-style addressing (SeaweedFS, MinIO, Ceph RGW, AWS).
  - Uploads only when the object differs from the file. The object is compared by size
    and by the MD5 of the file against the object's ETag, which is the MD5 of the content
    for single-part uploads. An object whose ETag is not a plain MD5 (a multipart upload,
    C(<md5>-<parts>)) cannot be compared and is uploaded once more as a single part, after
    which the comparison holds.
  - Uploads are single-part C(PutObject) requests with C(Content-MD5), so the store
    verifies the bytes it received; files larger than 5 GiB are refused.
  - Runs where it is executed; delegate it to the controller (C(delegate_to=localhost))
    where the file lives, so the nodes need no C(boto3).
version_added: "1.0.0"
author:
  - customer pipeline project
extends_documentation_fragment:
  - customer_streaming.pipeline.s3
options:
  src:
    description: Path of the local file to upload (on the host that runs the module).
    type: path
    required: true
  bucket:
    description: Name of the bucket; it must exist (see M(customer_streaming.pipeline.s3_bucket)).
    type: str
    required: true
  key:
    description: Key of the object in the bucket, for example C(incoming/customers.csv).
    type: str
    required: true
  content_type:
    description: C(Content-Type) stored with the object. Only used when the module uploads.
    type: str
    default: application/octet-stream
attributes:
  check_mode:
    support: full
    description: Reports whether the file would be uploaded and why, uploads nothing.
  diff_mode:
    support: full
    description: Shows the object's size and ETag before and the file's size and MD5 after.
notes:
  - Objects encrypted with SSE-KMS or SSE-C have ETags that are not the MD5 of their
    content; such objects are uploaded on every run.
"""

EXAMPLES = r"""
- name: Upload customers.csv to s3://customers/incoming/customers.csv
  customer_streaming.pipeline.s3_object:
    src: "{{ playbook_dir }}/../files/customers.csv"
    bucket: customers
    key: incoming/customers.csv
    content_type: text/csv
    endpoint_url: http://127.0.0.1:8333
    access_key_id: "{{ cluster_s3_access_key_id }}"
    secret_access_key: "{{ cluster_s3_secret_access_key }}"
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
url:
  description: The object's address.
  returned: always
  type: str
  sample: s3://customers/incoming/customers.csv
size:
  description: Size of the local file in bytes.
  returned: always
  type: int
  sample: 1048576
md5:
  description: MD5 of the local file, hex.
  returned: always
  type: str
  sample: 42d99f77079a56899e5ddaa8a6196cda
etag:
  description: ETag of the object after the module ran, without quotes; in check mode, the ETag it had (empty if it was missing).
  returned: always
  type: str
  sample: 42d99f77079a56899e5ddaa8a6196cda
reason:
  description:
    - Why the file was (or in check mode would be) uploaded; C(none) when the object already matched.
    - One of C(missing), C(size), C(content), C(multipart), C(none).
  returned: always
  type: str
  sample: missing
"""

import base64
import hashlib
import os

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.customer_streaming.pipeline.plugins.module_utils.s3_common import (
    S3ModuleError,
    error_code,
    make_client,
)

try:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError:  # handled in main()
    boto3 = None
    BotoCoreError = ClientError = Exception

MISSING_CODES = frozenset(("404", "NoSuchKey", "NotFound"))
MAX_SINGLE_PUT = 5 * 1024 ** 3
CHUNK = 1024 * 1024



def file_md5(path):
    """Hex MD5 of a file, read in 1 MiB chunks."""
    digest = hashlib.md5()  # noqa: S324 - S3 ETags are MD5, this is no security use
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def etag_md5(etag):
    """The MD5 an ETag stands for, or None when it is not a plain MD5 (multipart, SSE-C/KMS)."""
    value = (etag or "").strip().strip('"').lower()
    if len(value) == 32 and all(c in "0123456789abcdef" for c in value):
        return value
    return None


def upload_reason(local_size, local_md5, remote):
    """Why the object must be uploaded: 'missing', 'size', 'multipart', 'content', or 'none'.

    remote is None when the object does not exist, else a dict with 'size' and 'etag'.
    """
    if remote is None:
        return "missing"
    if int(remote["size"]) != int(local_size):
        return "size"
    remote_md5 = etag_md5(remote["etag"])
    if remote_md5 is None:
        return "multipart"
    if remote_md5 != local_md5.lower():
        return "content"
    return "none"


def object_diff(url, remote, local_size, local_md5):
    """An Ansible diff: the object's size and ETag before, the file's size and MD5 after."""
    if remote is None:
        before = "object %s: absent\n" % url
    else:
        before = "object %s\nsize: %d\netag: %s\n" % (url, int(remote["size"]), remote["etag"].strip('"'))
    after = "object %s\nsize: %d\netag: %s\n" % (url, local_size, local_md5)
    return {"before_header": url, "after_header": url, "before": before, "after": after}


def head_object(client, bucket, key):
    """The object's size and ETag, or None when it (or its bucket) does not exist."""
    try:
        head = client.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if error_code(exc) in MISSING_CODES or error_code(exc) == "NoSuchBucket":
            return None
        raise S3ModuleError(
            "cannot read s3://%s/%s: %s (check the endpoint and the credentials)" % (bucket, key, exc)
        ) from exc
    return {"size": int(head["ContentLength"]), "etag": str(head.get("ETag", ""))}


def put_file(client, src, bucket, key, md5_hex, content_type):
    """Upload the file in one PutObject with Content-MD5; returns the new ETag without quotes."""
    content_md5 = base64.b64encode(bytes.fromhex(md5_hex)).decode("ascii")
    try:
        with open(src, "rb") as body:
            response = client.put_object(
                Bucket=bucket, Key=key, Body=body, ContentMD5=content_md5, ContentType=content_type
            )
    except ClientError as exc:
        if error_code(exc) == "NoSuchBucket":
            raise S3ModuleError(
                "bucket %s does not exist; create it first (s3_bucket)" % bucket
            ) from exc
        raise S3ModuleError("cannot upload %s to s3://%s/%s: %s" % (src, bucket, key, exc)) from exc
    return str(response.get("ETag", "")).strip('"')


def ensure_object(client, src, bucket, key, content_type="application/octet-stream", check_mode=False):
    """Upload src to s3://bucket/key unless the object already holds the same bytes."""
    if not os.path.isfile(src):
        raise S3ModuleError("src %s is not a file" % src)
    local_size = os.path.getsize(src)
    if local_size > MAX_SINGLE_PUT:
        raise S3ModuleError(
            "src %s is %d bytes, more than the 5 GiB a single PutObject takes" % (src, local_size)
        )
    local_md5 = file_md5(src)
    url = "s3://%s/%s" % (bucket, key)
    remote = head_object(client, bucket, key)
    reason = upload_reason(local_size, local_md5, remote)
    etag = remote["etag"].strip('"') if remote else ""
    changed = reason != "none"
    if changed and not check_mode:
        etag = put_file(client, src, bucket, key, local_md5, content_type)
    return {
        "changed": changed,
        "url": url,
        "size": local_size,
        "md5": local_md5,
        "etag": etag,
        "reason": reason,
        "diff": object_diff(url, remote, local_size, local_md5),
    }


def main():
    module = AnsibleModule(
        argument_spec={
            "src": {"type": "path", "required": True},
            "bucket": {"type": "str", "required": True},
            "key": {"type": "str", "required": True, "no_log": False},
            "content_type": {"type": "str", "default": "application/octet-stream"},
            "endpoint_url": {"type": "str"},
            "region": {"type": "str", "default": "us-east-1"},
            "access_key_id": {"type": "str", "required": True, "no_log": False},
            "secret_access_key": {"type": "str", "required": True, "no_log": True},
        },
        supports_check_mode=True,
    )
    if boto3 is None:
        module.fail_json(msg=missing_required_lib("boto3"))
    params = module.params
    try:
        # Uploads of large files take longer than a bucket call.
        client = make_client(
            params["endpoint_url"], params["region"], params["access_key_id"], params["secret_access_key"],
            read_timeout=300,
        )
        result = ensure_object(
            client,
            params["src"],
            params["bucket"],
            params["key"],
            params["content_type"],
            module.check_mode,
        )
    except S3ModuleError as exc:
        module.fail_json(msg=str(exc))
    except (BotoCoreError, ClientError) as exc:
        module.fail_json(
            msg="S3 request for s3://%s/%s at %s failed: %s"
            % (params["bucket"], params["key"], params["endpoint_url"] or "AWS", exc)
        )
    if not module._diff:
        result.pop("diff")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
