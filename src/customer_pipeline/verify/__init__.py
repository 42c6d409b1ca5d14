"""What verify.yml runs to check the pipeline end to end.

`source` (on a node, in the producer's virtualenv: what each source object should give),
`written` (on a node, with spark-submit from customer_pipeline.zip: what the HDFS datasets
hold) and `reconcile` (on the controller: the verdict). Nothing is imported by this file.
"""
