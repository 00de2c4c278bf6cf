"""Notebook 06, training fast: why the blog's pipeline is slow (``data_work``), the side-by-side benchmark
(``bench``), the live measurements and their settings (``pipelines``), threads on a busy machine (``busy``), whether
bf16 costs accuracy (``bf16_study``), the figures (``figures``) and the blog's full protocol timed on a GPU
(``gpu_protocol``)."""
