"""The Spark Structured Streaming job: `customers-raw` into the HDFS datasets and topics.

`job` (the entry point `main()`), `rules` (the contract as native Spark SQL), `batch_commit`
(exactly-once dataset writes per micro-batch) and `config` (its settings). Shipped to the
nodes inside customer_pipeline.zip; nothing is imported by this file.
"""
