"""Training: the loop and its events (training), loss weightings (weighting), metrics, grids of runs (runs), the device and memory."""
