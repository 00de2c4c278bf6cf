"""The code that serves one notebook each, in a package named after its lesson (degradation is notebook 01, ...,
speed is 06). Lessons import the core (``course_lib.*``); the core never imports a lesson."""
