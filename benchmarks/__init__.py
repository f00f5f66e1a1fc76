"""ganlib's benchmarks: `python -m benchmarks` (or `bash benchmarks/run_all.sh`) runs them all; see README.md."""
