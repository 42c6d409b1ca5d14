"""The producer service: CSV objects in S3 into the Kafka topic `customers-raw`.

`service` (the main loop; `python -m customer_pipeline.producer` runs it), `config` (its
settings), `progress` (the progress topic) and `s3_source` (listing and reading objects).
Nothing is imported by this file: the verify programs import `config` without the rest.
"""
