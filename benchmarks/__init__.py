"""evalkit's benchmarks: `python -m benchmarks run [NAME ...] [--size tiny|small|large]` (see README.md)."""
