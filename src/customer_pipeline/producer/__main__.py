"""`python -m customer_pipeline.producer`: run the producer service (see `service`)."""

from __future__ import annotations

from customer_pipeline.producer.service import cli

if __name__ == "__main__":
    cli()
