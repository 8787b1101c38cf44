"""A plugin whose import fails, as one with a missing dependency does."""

raise ImportError("jpilot_example_broken needs libexample, which is not installed")
