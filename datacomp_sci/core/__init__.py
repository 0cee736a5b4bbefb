"""Shared foundations of every stage: atomic files, uids and subset files, the pool schema, tar reading, evaluation-suite files, progress and tables."""
