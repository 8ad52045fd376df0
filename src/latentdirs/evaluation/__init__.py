"""Evaluation: RCA, ground-truth disentanglement metrics, method comparison."""
