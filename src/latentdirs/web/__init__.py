"""The web app: an explorer with sliders and the paper's MOS rating protocol.

``latentdirs serve RUN_DIR ...`` starts it (``app.py``); answers live in SQLite and
``latentdirs mos RUN_DIR`` reads them back (``ratings.py``); images are rendered on demand
behind a small LRU cache (``images.py``).
"""
