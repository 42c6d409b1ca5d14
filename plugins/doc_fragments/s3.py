# -*- coding: utf-8 -*-
"""Options that every S3 module of this collection takes: where the store is and who signs."""

from __future__ import annotations


class ModuleDocFragment:
    # The connection options of s3_bucket and s3_object, written once.
    DOCUMENTATION = r"""
options:
  endpoint_url:
    description:
      - URL of the S3 endpoint, for example C(http://127.0.0.1:8333).
      - Omit it to talk to AWS S3 itself.
    type: str
  region:
    description: Region used for request signing (and, for a new bucket, its location constraint).
    type: str
    default: us-east-1
  access_key_id:
    description: Access key id of an identity allowed to do what the module does.
    type: str
    required: true
  secret_access_key:
    description: Secret access key matching O(access_key_id). Never logged.
    type: str
    required: true
requirements:
  - boto3 (on the host that runs the module, usually the controller)
"""
