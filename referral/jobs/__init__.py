"""Scheduled work without cron: the daily jobs, their record, and the worker that runs them."""
