"""Sphinx configuration for the course website (built by docs/build.sh, which stages the sources first).

Sphinx + MyST-NB render the committed notebooks with their stored outputs; nothing is re-executed.
Everything a page loads is bundled in the site, so it works in a classroom with no network:
MathJax comes from a local copy (see docs/site_tools.py), and the ipywidgets loader, which
MyST-NB would fetch from a CDN, is switched off (a static page cannot run a widget anyway).
"""

project = "Residual networks, measured"
author = "the course authors"
copyright = "the course authors"

extensions = ["myst_nb", "sphinx.ext.mathjax"]
root_doc = "index"
exclude_patterns = ["_static", "**/.ipynb_checkpoints"]

# Notebooks: stored outputs only.
nb_execution_mode = "off"
nb_ipywidgets_js = {}
nb_merge_streams = True

myst_enable_extensions = ["dollarmath", "amsmath", "html_image", "colon_fence", "deflist"]
# Section links such as README.md#troubleshooting resolve to the heading's anchor.
myst_heading_anchors = 3

# Local MathJax 3 (copied into _static/mathjax by the staging step).
mathjax_path = "mathjax/tex-chtml.js"

html_theme = "sphinx_book_theme"
html_title = "Residual networks, measured"
html_static_path = ["_static"]
html_last_updated_fmt = None
html_theme_options = {
    "home_page_in_toc": True,
    "show_navbar_depth": 1,
    "use_download_button": True,
    "use_fullscreen_button": False,
    "navigation_with_keys": False,
}
# The figures are PNGs on white, so the site starts light (an unset mode also makes the theme
# log a console error on a first visit).
html_context = {"default_mode": "light"}

# The notebooks are written for JupyterLab and GitHub, where a heading may skip a level;
# that is a matter of style, not a broken page, so it does not fail the build.
suppress_warnings = ["myst.header"]
