"""Training-data selection under a budget: baselines and bandits."""
