"""Keyed rows: a live block's loop sent a row at a time (see ``render.py``)."""
