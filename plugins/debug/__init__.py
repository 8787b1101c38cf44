"""The `debug` plugin: model-surprisal hints on unusual lines, and syntax-error fixes."""
