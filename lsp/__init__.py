"""jpilot's language server: documents, settings, LSP handlers, hook dispatch and the CLI."""
