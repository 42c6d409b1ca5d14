"""The source objects: listing the CSV objects under a prefix and opening one for reading.

An object is known by its key and ETag (CONTRACT.md): the same key with another ETag is
another object. Opening passes the ETag as `IfMatch`, so a key overwritten while it is
read fails loudly (`ObjectChangedError`) instead of mixing two versions' rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, BinaryIO, Dict, List, Optional

from customer_pipeline.producer.config import S3Settings

CSV_SUFFIX = ".csv"
# Error codes after which retrying cannot help, whatever the back-off, each with the setting to
# look at: the service's one error line names it (producer.ini's key and the inventory's variable).
FATAL_S3_CODES: Dict[str, str] = {
    "NoSuchBucket": "check [s3] bucket (customer_producer_s3_bucket)",
    "InvalidBucketName": "check [s3] bucket (customer_producer_s3_bucket)",
    "InvalidAccessKeyId": "check AWS_ACCESS_KEY_ID in producer.env (customer_producer_s3_access_key_id)",
    "SignatureDoesNotMatch": "check AWS_SECRET_ACCESS_KEY in producer.env (customer_producer_s3_secret_access_key)",
    "AccessDenied": "the S3 credentials in producer.env may not list or read [s3] bucket (customer_producer_s3_bucket)",
}
# Failures retried (the store may be down for a while), with the setting to look at once the retries end.
RETRIED_S3_ERRORS: Dict[str, str] = {
    "EndpointConnectionError": "check [s3] endpoint_url (customer_producer_s3_endpoint_url)",
    "ConnectTimeoutError": "check [s3] endpoint_url (customer_producer_s3_endpoint_url)",
}


@dataclass(frozen=True, order=True)
class SourceObject:
    key: str
    etag: str
    size: int
    bucket: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


class ObjectChangedError(Exception):
    """The object's content changed (new ETag) or it vanished while it was being read."""


def make_client(settings: S3Settings) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        s3={"addressing_style": settings.addressing_style},
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=10,
        read_timeout=60,
    )
    # Credentials: boto3's own chain (environment, then the instance profile); never arguments.
    return boto3.client("s3", endpoint_url=settings.endpoint_url, region_name=settings.region, config=config)


def list_csv_objects(client: Any, settings: S3Settings) -> List[SourceObject]:
    """Every `.csv` object under the prefix, in key order."""
    found = []
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=settings.bucket, Prefix=settings.prefix):
        for item in page.get("Contents", []):
            if item["Key"].endswith(CSV_SUFFIX):
                found.append(SourceObject(key=item["Key"], etag=item["ETag"], size=int(item["Size"]),
                                          bucket=settings.bucket))
    # S3 lists in UTF-8 binary order already; sorting makes that true for every store.
    return sorted(found, key=lambda source: source.key.encode("utf-8"))


def open_object(client: Any, source: SourceObject) -> BinaryIO:
    """A streaming body of exactly the listed version of the object."""
    from botocore.exceptions import ClientError

    try:
        response = client.get_object(Bucket=source.bucket, Key=source.key, IfMatch=source.etag)
    except ClientError as error:
        code = error_code(error)
        if code in ("PreconditionFailed", "NoSuchKey", "412", "404"):
            raise ObjectChangedError(f"{source.uri} changed or vanished since it was listed ({code})") from None
        raise
    return response["Body"]  # type: ignore[no-any-return]


def error_code(error: BaseException) -> str:
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", "")) or type(error).__name__


def is_fatal(error: BaseException) -> bool:
    return error_code(error) in FATAL_S3_CODES


def setting_to_check(error: BaseException) -> Optional[str]:
    """Which setting a failed S3 call points at, if it points at one."""
    code = error_code(error)
    return FATAL_S3_CODES.get(code) or RETRIED_S3_ERRORS.get(code)

