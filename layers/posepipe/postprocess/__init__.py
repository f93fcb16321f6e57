"""What is done to poses after inference: stable ids over time and temporal smoothing."""
