"""AMDIM (Bachman et al. 2019): augmented view pairs, the multiscale encoder and its cross-view critic."""
