"""Stage 2: DataComp subset files from pools: SQL and DataComp's baseline filters, language id, deduplication, decontamination."""
