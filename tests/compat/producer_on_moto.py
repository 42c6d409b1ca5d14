"""Run the producer's real entry point (`customer_pipeline.producer` main) with S3 served by moto.

    python tests/compat/producer_on_moto.py OBJECTS_DIR BUCKET PREFIX -- <producer arguments>

S3 is not what the Kafka 1.1 tests are about, and moto's own server needs Flask, which the
project does not install; so moto's in-process mock runs inside the producer's process. Every
file of OBJECTS_DIR is uploaded to s3://BUCKET/PREFIX<name> before the producer starts, and
files added later are uploaded within half a second, as a new object would arrive. moto's
ETag is the MD5 of the content, so a restarted producer sees the same objects with the same
ETags. The exit code is the producer's.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Any, Dict, List


def upload_new(client: Any, folder: Path, bucket: str, prefix: str, seen: Dict[str, float]) -> None:
    for path in sorted(folder.iterdir()):
        if path.is_file() and not path.name.startswith(".") and seen.get(path.name) != path.stat().st_mtime:
            client.put_object(Bucket=bucket, Key=prefix + path.name, Body=path.read_bytes())
            seen[path.name] = path.stat().st_mtime


def main(argv: List[str]) -> int:
    folder, bucket, prefix = Path(argv[0]), argv[1], argv[2]
    producer_args = argv[argv.index("--") + 1:]
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")

    import boto3
    from moto import mock_aws

    from customer_pipeline.producer import service

    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=bucket)
        seen: Dict[str, float] = {}
        upload_new(client, folder, bucket, prefix, seen)
        stop = threading.Event()

        def sync() -> None:
            while not stop.wait(0.5):
                upload_new(client, folder, bucket, prefix, seen)

        threading.Thread(target=sync, daemon=True).start()
        try:
            return service.main(producer_args)
        finally:
            stop.set()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
