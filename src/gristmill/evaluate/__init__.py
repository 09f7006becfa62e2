"""Evaluations of models and data: CrowS-Pairs bias scores of causal language models."""
