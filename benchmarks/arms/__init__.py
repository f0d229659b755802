"""Stand-alone arm scripts of the benchmarks: each is what a user would write by hand with the peers."""
