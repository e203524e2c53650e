"""The trainer: one loop for every modality."""
