"""Notebook 06, training fast: where the blog's training time goes, what the course's fast path gains on this
machine and on a GPU, what threads do on a busy machine, and whether bf16 costs accuracy."""
