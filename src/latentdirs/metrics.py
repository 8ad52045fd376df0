"""Disentanglement metrics, the public name: ``from latentdirs.metrics import mig, dci, modularity``.

The implementation lives in :mod:`latentdirs.evaluation.metrics` (beside RCA and the
ground-truth protocol); this module only re-exports it.
"""
from .evaluation.metrics import (HISTOGRAM_BINS, PREDICTORS, all_metrics, dci, discretize, factor_entropies,
                                 importance_matrix, mig, modularity, mutual_information_matrix)

__all__ = ["HISTOGRAM_BINS", "PREDICTORS", "all_metrics", "dci", "discretize", "factor_entropies",
           "importance_matrix", "mig", "modularity", "mutual_information_matrix"]
