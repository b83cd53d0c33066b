"""Semantic attacks (issue 4): data-source perturbations and wireless (over-the-air) perturbations."""
