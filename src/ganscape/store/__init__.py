"""The storage floor: checkpoint files, the run directory's layout, downloads; no config knowledge."""
