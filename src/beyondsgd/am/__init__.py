"""Alternating minimization (gradient-free) training of MLPs."""
