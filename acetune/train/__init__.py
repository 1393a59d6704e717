"""Training: objective, loop, state (the loop arrives with the trainer issue)."""
