"""jpilot's model layer: bundle reader, tokenizer, ONNX Runtime engine, export, convert and train."""
