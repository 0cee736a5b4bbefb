"""Stage 4: DataComp's scale configs and OpenCLIP's trainer."""
