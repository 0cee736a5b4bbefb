"""Stage 5: evaluation data (download, local layout) and DataComp's 38-task evaluation through clip_benchmark."""
