"""Analyses of the history: learnability labels, continuous scores, gradient similarity."""
