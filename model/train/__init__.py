"""Train jpilot's own small code-tuned GPT-J: corpus, tokenizer and training loop."""
