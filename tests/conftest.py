import os

import pytest
import torch

# One thread per test process: the machine has 2 cores and parallel workers must not fight.
torch.set_num_threads(int(os.environ.get("LATENTDIRS_TEST_THREADS", "1")))


@pytest.fixture(scope="session")
def planted():
    import latentdirs
    return latentdirs.load_generator("planted")


@pytest.fixture(autouse=True)
def _forest_dci_in_end_to_end_tests(request, monkeypatch):
    # compare/sweep/ground-truth tests score DCI through all_metrics, whose default is disentanglement_lib's
    # gradient boosting: minutes per test on this CPU. They test the pipeline, not the predictor, so they use
    # the forest; gbt itself is checked against disentanglement_lib's formulas in test_metrics.py.
    if request.module.__name__.endswith("test_metrics"):
        return
    import functools

    from latentdirs.evaluation import ground_truth, metrics
    monkeypatch.setattr(ground_truth, "all_metrics", functools.partial(metrics.all_metrics, predictor="forest"))
