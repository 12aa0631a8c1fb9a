"""RQ job functions: plain functions taking ids and JSON-safe values."""
