"""``python -m latentdirs.cli`` (what ``torchrun -m latentdirs.cli discover ...`` runs)."""
import sys

from . import main

sys.exit(main())
