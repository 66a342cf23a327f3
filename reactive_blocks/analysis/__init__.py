"""Reading templates: what each block reads, where the sse-swap elements are, which
templates a project has. The index (``index/scan.py``) is filled from them."""
