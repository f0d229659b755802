"""Data that streams through Ray Data instead of loading whole: where its files are (files), the
pipeline that splits and preprocesses them on the cluster (streams), and the DataModule that feeds
Lightning from each worker's shard (module)."""
