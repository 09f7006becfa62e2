"""Training: causal-LM SFT (LoRA or full), token and sequence classification, a small LM from scratch."""
