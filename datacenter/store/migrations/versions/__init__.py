"""Migration scripts, oldest first: ``vNNNN_what.py``. Never edit one that has shipped."""
