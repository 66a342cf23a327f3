"""A small project served by a real daphne process in the end-to-end tests."""
