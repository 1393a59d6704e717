"""Datasets: folder scan, labels, prompts, the latent cache and preprocessing."""
