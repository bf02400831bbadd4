"""What the tests and the benchmarks share (served, metering, workload); the functions
never import it. The local stack itself is goalkeeper_cli.local_stack, under tools/."""
