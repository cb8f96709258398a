"""What happens inside the experts: the recorder of a run's snapshots and the tables it fills (recorder)."""
