"""Live pages without a stream class: a page's own view re-run for its stream."""
