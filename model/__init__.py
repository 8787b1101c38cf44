"""jpilot model layer: bundle reader, tokenizer, ONNX Runtime engine, export, convert, train."""
