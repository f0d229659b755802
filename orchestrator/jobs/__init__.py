"""Ray jobs: the Jobs API client and its errors, what `submit` sends, and what a job's driver does first."""
