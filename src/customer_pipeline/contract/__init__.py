"""The record contract in plain Python: the reference implementation every program shares.

`rules` (the rules, records and record_id), `csv_reader` (a source CSV object read as
the contract defines it), `messages` (the Kafka message formats), `counts` (counts per
class of an object) and `sample_data` (the deterministic sample CSV). Nothing here needs
Kafka, S3 or Spark, and nothing is imported by this file: import the module you need.
"""
