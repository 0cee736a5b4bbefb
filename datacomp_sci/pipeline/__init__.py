"""Whole-pipeline runners: experiment files and the demo."""
