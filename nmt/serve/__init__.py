"""The HTTP translation server (`nmt-serve`, optional `serve` extra): app, batching, page."""
