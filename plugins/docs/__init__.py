"""The `docs` plugin: hover docs, docstring generation and code explanation."""
