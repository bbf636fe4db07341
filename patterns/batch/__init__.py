"""Batch pattern: scheduled daily digests and bulk summarize jobs."""
