#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Ansible module s3_bucket: ensure a bucket exists on an S3-compatible store."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: s3_bucket
short_description: Ensure a bucket exists (or is absent) on an S3-compatible object store
description:
  - Creates or deletes one bucket through the S3 API with C(boto3), signature v4 and
    path-style addressing, so it works against SeaweedFS, MinIO, Ceph RGW and AWS alike.
  - Idempotent; reports C(changed) only when the bucket was (or in check mode would be)
    created or deleted.
  - Runs where it is executed; delegate it to the controller (C(delegate_to=localhost))
    so the nodes need no C(boto3).
version_added: "1.0.0"
author:
  - customer pipeline project
extends_documentation_fragment:
  - customer_streaming.pipeline.s3
options:
  name:
    description: Name of the bucket.
    type: str
    required: true
  state:
    description:
      - C(present) creates the bucket if it is missing.
      - C(absent) deletes the bucket if it exists; the store refuses a bucket that still
        holds objects, and the module reports that as a failure.
    type: str
    choices: [present, absent]
    default: present
attributes:
  check_mode:
    support: full
    description: Reports whether the bucket would be created or deleted, changes nothing.
  diff_mode:
    support: full
    description: Shows the bucket's state before and after.
"""

EXAMPLES = r"""
- name: Create bucket customers on the sandbox's SeaweedFS
  customer_streaming.pipeline.s3_bucket:
    name: customers
    endpoint_url: http://127.0.0.1:8333
    access_key_id: "{{ seaweedfs_access_key_id }}"
    secret_access_key: "{{ seaweedfs_secret_access_key }}"
  delegate_to: localhost

- name: Remove the empty bucket scratch
  customer_streaming.pipeline.s3_bucket:
    name: scratch
    state: absent
    endpoint_url: http://127.0.0.1:8333
    access_key_id: "{{ seaweedfs_access_key_id }}"
    secret_access_key: "{{ seaweedfs_secret_access_key }}"
  delegate_to: localhost
"""

RETURN = r"""
name:
  description: Name of the bucket.
  returned: always
  type: str
  sample: customers
action:
  description: What the module did (or would do in check mode), C(none) when the bucket was already in the wanted state.
  returned: always
  type: str
  sample: create
exists:
  description: Whether the bucket exists after the module ran (in check mode, whether it would).
  returned: always
  type: bool
  sample: true
"""

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

MISSING_CODES = frozenset(("404", "NoSuchBucket", "NotFound"))



def bucket_exists(client, name):
    """True if the bucket exists and is ours; False if it does not exist."""
    try:
        client.head_bucket(Bucket=name)
    except ClientError as exc:
        if error_code(exc) in MISSING_CODES:
            return False
        raise S3ModuleError(
            "cannot read bucket %s: %s (check the endpoint and the credentials)" % (name, exc)
        ) from exc
    return True


def plan_bucket(exists, state):
    """The action that turns the actual state into the wanted one: create, delete or none."""
    if state == "present":
        return "none" if exists else "create"
    if state == "absent":
        return "delete" if exists else "none"
    raise ValueError("unknown state %r" % (state,))


def bucket_diff(name, exists, action):
    """An Ansible diff for the bucket, before and after the action."""
    after = {"create": True, "delete": False}.get(action, exists)
    return {
        "before_header": "s3://%s" % name,
        "after_header": "s3://%s" % name,
        "before": "bucket %s: %s\n" % (name, "present" if exists else "absent"),
        "after": "bucket %s: %s\n" % (name, "present" if after else "absent"),
    }


def create_bucket(client, name, region):
    """Create the bucket; a bucket we already own (a concurrent create) is not an error."""
    kwargs = {"Bucket": name}
    if region and region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        client.create_bucket(**kwargs)
    except ClientError as exc:
        if error_code(exc) == "BucketAlreadyOwnedByYou":
            return False
        raise S3ModuleError("cannot create bucket %s: %s" % (name, exc)) from exc
    return True


def delete_bucket(client, name):
    """Delete the bucket; the store refuses one that still holds objects."""
    try:
        client.delete_bucket(Bucket=name)
    except ClientError as exc:
        if error_code(exc) in MISSING_CODES:
            return False
        if error_code(exc) == "BucketNotEmpty":
            raise S3ModuleError(
                "bucket %s is not empty; delete its objects first, this module deletes only empty buckets" % name
            ) from exc
        raise S3ModuleError("cannot delete bucket %s: %s" % (name, exc)) from exc
    return True


def ensure_bucket(client, name, state="present", region="us-east-1", check_mode=False):
    """Bring the bucket to the wanted state; returns the module's result (without diff mode logic)."""
    exists = bucket_exists(client, name)
    action = plan_bucket(exists, state)
    changed = action != "none"
    if changed and not check_mode:
        if action == "create":
            changed = create_bucket(client, name, region)
        else:
            changed = delete_bucket(client, name)
    return {
        "changed": changed,
        "name": name,
        "action": action if changed else "none",
        "exists": state == "present",
        "diff": bucket_diff(name, exists, action),
    }


def main():
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
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
        client = make_client(
            params["endpoint_url"], params["region"], params["access_key_id"], params["secret_access_key"]
        )
        result = ensure_bucket(
            client, params["name"], params["state"], params["region"], module.check_mode
        )
    except S3ModuleError as exc:
        module.fail_json(msg=str(exc))
    except (BotoCoreError, ClientError) as exc:
        module.fail_json(
            msg="S3 request for bucket %s at %s failed: %s"
            % (params["name"], params["endpoint_url"] or "AWS", exc)
        )
    if not module._diff:
        result.pop("diff")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
