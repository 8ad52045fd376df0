import os

import pytest
import torch

# One thread per test process: the machine has 2 cores and parallel workers must not fight.
torch.set_num_threads(int(os.environ.get("LATENTDIRS_TEST_THREADS", "1")))


@pytest.fixture(scope="session")
def planted():
    import latentdirs
    return latentdirs.load_generator("planted")
