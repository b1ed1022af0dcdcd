"""The record of who did what (issue 4 turns it into a hash-chained, append-only audit log)."""
