"""What the project's S3 modules (s3_bucket, s3_object) share: the client and error codes."""

try:
    import boto3
    from botocore.config import Config
except ImportError:  # the modules report it with missing_required_lib
    boto3 = None


class S3ModuleError(Exception):
    """A failure the module reports with fail_json and this message."""


def make_client(endpoint_url, region, access_key_id, secret_access_key, read_timeout=60):
    """An S3 client with signature v4 and path-style addressing (S3-compatible stores)."""
    config = Config(
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=10,
        read_timeout=read_timeout,
    )
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url or None,
        region_name=region,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        config=config,
    )


def error_code(exc):
    """The S3 error code of a botocore ClientError ('404', 'NoSuchBucket', 'NoSuchKey', ...)."""
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
