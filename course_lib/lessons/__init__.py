"""The code that serves one notebook each. Lessons import the core (``course_lib.*``); the core never imports a lesson.

========================  ==========================================================
lesson                    notebook
========================  ==========================================================
``degradation``           01 · the degradation problem, measured
``residual_block``        02 · the residual block y = f(x) + x
``building_resnets``      03 · building ResNets
``cnn_vs_resnet``         04 · the blog's experiment (protocol, claims, shuffling)
``why_residuals_work``    05 · lesion study, paths, loss landscape
``speed``                 06 · training fast on CPU and GPU (bench, pipelines, GPU protocol)
========================  ==========================================================
"""
