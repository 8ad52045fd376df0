"""Disentanglement metrics of codes (N, k) against ground-truth factors (N, F): MIG, DCI, modularity.

Conventions follow disentanglement_lib (Locatello et al. 2019): continuous codes are
discretized per dimension into 20 equal-width histogram bins before mutual information;
factors are integer class indices. All scores are in [0, 1], higher is better.

- :func:`mig` (Chen et al. 2018): for each factor, the gap between the two codes that
  share most information with it, divided by the factor's entropy; averaged over factors.
- :func:`dci` (Eastwood & Williams 2018): an importance matrix R (codes x factors) from
  one predictor per factor; disentanglement = each code matters for one factor,
  completeness = each factor is captured by one code, informativeness = test accuracy.
  ``predictor="gbt"`` (the default) is disentanglement_lib's: scikit-learn's
  ``GradientBoostingClassifier()`` with its default settings, importances
  ``feature_importances_``, one model per factor on the codes; published DCI tables
  (Locatello et al. 2019, DisCo) use it. ``predictor="forest"`` is a random forest of 20
  trees of depth <= 8 per factor, several times faster; on mixed and partial codes its D and
  C came out 0.08-0.12 lower than disentanglement_lib 1.5's on the same codes, so its
  numbers are not comparable with published ones.
- :func:`modularity` (Ridgeway & Zemel 2018): each code's information about the factors
  should be concentrated on one factor.
"""
from __future__ import annotations

import numpy as np

HISTOGRAM_BINS = 20


def discretize(codes: np.ndarray, bins: int = HISTOGRAM_BINS) -> np.ndarray:
    """Each code dimension cut into ``bins`` equal-width bins over its range (constant -> bin 0)."""
    codes = _as_codes(codes)
    out = np.zeros(codes.shape, dtype=np.int64)
    for i in range(codes.shape[1]):
        column = codes[:, i]
        low, high = column.min(), column.max()
        if high > low:
            edges = np.histogram_bin_edges(column, bins=bins, range=(low, high))
            out[:, i] = np.digitize(column, edges[1:-1])
    return out


def mutual_information_matrix(codes: np.ndarray, factors: np.ndarray, bins: int = HISTOGRAM_BINS) -> np.ndarray:
    """I(code_i; factor_j) in nats, shape (k, F), on histogram-discretized codes."""
    from sklearn.metrics import mutual_info_score
    codes, factors = _check(codes, factors)
    binned = discretize(codes, bins)
    return np.array([[mutual_info_score(factors[:, j], binned[:, i]) for j in range(factors.shape[1])]
                     for i in range(binned.shape[1])])


def factor_entropies(factors: np.ndarray) -> np.ndarray:
    """H(factor_j) in nats; I(f; f) is the entropy."""
    from sklearn.metrics import mutual_info_score
    factors = np.asarray(factors)
    if factors.ndim != 2:
        raise ValueError(f"factors must be (N, F), got shape {factors.shape}: reshape one factor to (N, 1)")
    return np.array([mutual_info_score(factors[:, j], factors[:, j]) for j in range(factors.shape[1])])


def mig(codes: np.ndarray, factors: np.ndarray, bins: int = HISTOGRAM_BINS) -> float:
    """Mutual Information Gap; constant factors (entropy 0) are skipped."""
    codes, factors = _check(codes, factors)
    info = mutual_information_matrix(codes, factors, bins)
    entropy = factor_entropies(factors)
    if info.shape[0] < 2:  # one code: the gap is its information itself
        info = np.vstack([info, np.zeros_like(info)])
    top_two = -np.sort(-info, axis=0)[:2]
    varying = entropy > 0
    if not varying.any():
        raise ValueError("every factor is constant: MIG is undefined")
    return float(np.mean((top_two[0] - top_two[1])[varying] / entropy[varying]))


def modularity(codes: np.ndarray, factors: np.ndarray, bins: int = HISTOGRAM_BINS) -> float:
    """Ridgeway & Zemel modularity; a code with no information about any factor scores 0."""
    codes, factors = _check(codes, factors)
    info = mutual_information_matrix(codes, factors, bins)
    num_factors = info.shape[1]
    if num_factors < 2:
        raise ValueError("modularity needs at least two factors")
    squared = info ** 2
    peak = squared.max(axis=1)
    # Everything but one peak counts as deviation: a code tied between two factors is not modular
    # (a template keeping every entry equal to the peak would score it 1).
    with np.errstate(divide="ignore", invalid="ignore"):
        deviation = (squared.sum(axis=1) - peak) / (peak * (num_factors - 1))
    per_code = np.where(peak > 0, 1.0 - deviation, 0.0)
    return float(per_code.mean())


PREDICTORS = ("gbt", "forest")


def importance_matrix(codes: np.ndarray, factors: np.ndarray, test_fraction: float = 0.2, seed: int = 0,
                      predictor: str = "gbt", num_trees: int = 20, max_depth: int = 8,
                      test: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Importances R (k, F), one predictor per factor, and held-out accuracy per factor.

    The held-out points are ``test = (codes, factors)`` when given (disentanglement_lib samples
    a separate test set), else a seeded ``test_fraction`` of the points. ``num_trees`` and
    ``max_depth`` only apply to ``predictor="forest"``; "gbt" keeps scikit-learn's defaults,
    as disentanglement_lib does.
    """
    if predictor not in PREDICTORS:
        raise ValueError(f"predictor must be one of {', '.join(PREDICTORS)}, got {predictor!r}")
    codes, factors = _check(codes, factors)
    if test is None:
        if not 0 < test_fraction < 1:
            raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
        order = np.random.default_rng(seed).permutation(len(codes))
        num_test = max(1, int(round(len(codes) * test_fraction)))
        if num_test >= len(codes):  # nothing left to train on
            raise ValueError(f"holding out {num_test} of {len(codes)} points (test_fraction {test_fraction}) leaves "
                             "none to train on: pass more points, a smaller test_fraction or a separate "
                             "test=(codes, factors)")
        train_codes, train_factors = codes[order[num_test:]], factors[order[num_test:]]
        test_codes, test_factors = codes[order[:num_test]], factors[order[:num_test]]
    else:
        train_codes, train_factors = codes, factors
        if not isinstance(test, (tuple, list)) or len(test) != 2:
            raise ValueError("test must be a pair (codes, factors) of held-out points")
        test_codes, test_factors = _check(*test)
        if test_codes.shape[1] != codes.shape[1] or test_factors.shape[1] != factors.shape[1]:
            raise ValueError(f"test codes/factors must have {codes.shape[1]} codes and {factors.shape[1]} factors, "
                             f"got shapes {test_codes.shape} and {test_factors.shape}")
    importance = np.zeros((codes.shape[1], factors.shape[1]))
    accuracy = np.zeros(factors.shape[1])
    for j in range(factors.shape[1]):
        classes = np.unique(train_factors[:, j])
        if len(classes) < 2:  # a constant factor: no code can matter for it (gradient boosting refuses one class)
            accuracy[j] = np.mean(test_factors[:, j] == classes[0])
            continue
        model = _predictor(predictor, seed, num_trees, max_depth)
        model.fit(train_codes, train_factors[:, j])
        importance[:, j] = np.abs(model.feature_importances_)
        accuracy[j] = np.mean(model.predict(test_codes) == test_factors[:, j])
    return importance, accuracy


def _predictor(kind: str, seed: int, num_trees: int, max_depth: int):
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    if kind == "gbt":
        # disentanglement_lib: GradientBoostingClassifier() with default settings (100 stages of depth-3
        # trees, lr 0.1). They leave the seed unset; it breaks ties between equally good splits, so
        # unseeded runs differ by ~1e-3 in importances. Seeded here to be reproducible.
        return GradientBoostingClassifier(random_state=seed)
    # Every split sees every code (max_features=None): with the default sqrt subset, trees are forced
    # to split on irrelevant codes and hand them importance, which caps DCI-D near 0.7 for a perfect code.
    return RandomForestClassifier(n_estimators=num_trees, max_depth=max_depth, max_features=None,
                                  random_state=seed, n_jobs=1)


def dci(codes: np.ndarray, factors: np.ndarray, seed: int = 0, predictor: str = "gbt",
        test: tuple[np.ndarray, np.ndarray] | None = None, **forest_options) -> dict[str, float]:
    """{"disentanglement", "completeness", "informativeness"} (Eastwood & Williams 2018).

    ``predictor``: "gbt" (disentanglement_lib's gradient boosting, comparable with published
    DCI) or "forest" (faster, lower D/C on mixed codes). ``test``: a separate held-out
    (codes, factors) set for informativeness; by default 20% of the points are held out.
    """
    importance, accuracy = importance_matrix(codes, factors, seed=seed, predictor=predictor, test=test,
                                             **forest_options)
    return {"disentanglement": _disentanglement(importance), "completeness": _completeness(importance),
            "informativeness": float(accuracy.mean())}


def all_metrics(codes: np.ndarray, factors: np.ndarray, seed: int = 0, predictor: str = "gbt") -> dict[str, float]:
    """MIG, DCI (three numbers, with ``predictor``) and modularity in one flat dict."""
    scores = {"mig": mig(codes, factors), "modularity": modularity(codes, factors)}
    scores.update({f"dci_{k}": v for k, v in dci(codes, factors, seed=seed, predictor=predictor).items()})
    return scores


def _disentanglement(importance: np.ndarray) -> float:
    total = importance.sum()
    if total <= 0 or importance.shape[1] < 2:
        return 0.0
    per_code = 1.0 - _entropy(importance, axis=1, base=importance.shape[1])
    weight = importance.sum(axis=1) / total  # codes that matter little count little
    return float((per_code * weight).sum())


def _completeness(importance: np.ndarray) -> float:
    if importance.sum() <= 0 or importance.shape[0] < 2:
        return 0.0
    per_factor = 1.0 - _entropy(importance, axis=0, base=importance.shape[0])
    weight = importance.sum(axis=0) / importance.sum()  # as disentanglement_lib: factors no code predicts drop out
    return float((per_factor * weight).sum())


def _entropy(importance: np.ndarray, axis: int, base: int) -> np.ndarray:
    """Entropy (log base ``base``) of the importances normalized along ``axis``; rows of zeros -> 1."""
    sums = importance.sum(axis=axis, keepdims=True)
    p = np.divide(importance, sums, out=np.zeros_like(importance), where=sums > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log(p), 0.0)
    h = terms.sum(axis=axis) / np.log(base)
    return np.where(np.squeeze(sums, axis=axis) > 0, h, 1.0)


def _as_codes(codes) -> np.ndarray:
    codes = np.asarray(codes, dtype=np.float64)
    if codes.ndim != 2:
        raise ValueError(f"codes must be (N, k), got shape {codes.shape}")
    if codes.shape[0] < 1 or codes.shape[1] < 1:
        raise ValueError(f"codes must hold at least one point and one code, got shape {codes.shape}")
    if not np.isfinite(codes).all():
        raise ValueError("codes contain NaN or inf")
    return codes


def _check(codes, factors) -> tuple[np.ndarray, np.ndarray]:
    codes = _as_codes(codes)
    factors = np.asarray(factors)
    if factors.ndim != 2 or len(factors) != len(codes):
        raise ValueError(f"factors must be (N, F) with N = {len(codes)} like the codes, got shape {factors.shape}")
    if factors.shape[1] < 1:
        raise ValueError(f"factors must hold at least one factor, got shape {factors.shape}")
    if not np.issubdtype(factors.dtype, np.integer):
        raise ValueError(f"factors must be integer class indices, got dtype {factors.dtype}")
    return codes, factors
