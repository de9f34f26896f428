"""evalkit's benchmarks: `python -m benchmarks run [NAME ...] [--size tiny|small|realistic|large]` (see README.md)."""
