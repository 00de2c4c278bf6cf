"""Notebook 04, the blog's experiment: the protocol and its runs (``protocol``), reading the results against the
blog's claims (``claims``), and the missing shuffle (``shuffling``)."""
