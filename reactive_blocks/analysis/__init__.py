"""Reading templates: what each block reads, where the sse-swap elements are, and the
start-up scan that fills the dependency index from them."""
