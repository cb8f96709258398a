"""Serving a class: run files (records), each browser's kept runs (shelf) in the durable store (store), the server's environment variables (environment) and the multi-process command (classroom)."""
