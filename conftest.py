"""Test-run settings shared by the unit tests and the notebooks that nbval executes.

The notebooks save figures as they run; during a test run they go to a temporary folder so
the committed figures in figures/ (made with the cpu profile) are never overwritten by smoke
versions. The nbval kernels inherit this environment.
"""
import os
import tempfile

if not os.environ.get("COURSE_FIGURES_DIR"):
    os.environ["COURSE_FIGURES_DIR"] = os.path.join(tempfile.mkdtemp(prefix="course-test-"), "figures")
