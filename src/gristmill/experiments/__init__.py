"""Experiments on generated data: model collapse, bias amplification."""
