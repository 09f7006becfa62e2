"""gristmill: build fine-tuning data for language models and measure how far it can be trusted."""

__version__ = "0.1.0"
