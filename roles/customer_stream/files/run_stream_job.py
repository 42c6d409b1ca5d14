"""spark-submit entry point of customer-stream.service (the package comes with --py-files)."""

import sys

from customer_pipeline.stream.job import main

if __name__ == "__main__":
    sys.exit(main())
