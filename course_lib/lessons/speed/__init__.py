"""Notebook 06, training fast: the blog's pipeline against the course's (``pipelines``), the side-by-side benchmark
(``bench``) and the blog's full protocol timed on a GPU (``gpu_protocol``)."""
