#!/usr/bin/env bash
# Build the course website from the committed notebooks (their stored outputs; nothing is re-executed).
#
#   bash docs/build.sh OUTDIR        then open OUTDIR/index.html, or serve it:
#   python -m http.server --directory OUTDIR 8000
#
# Sphinx + MyST-NB (docs/conf.py) render a staged copy of the README, the notebooks and docs/.
# The build fails (non-zero exit) on any Sphinx warning (-W: a missing image, an unresolved link)
# and on any problem docs/site_tools.py finds in the output: a notebook without a page, a local
# href/src that does not resolve, or anything loaded from outside the site.
set -euo pipefail

if [ "$#" -ne 1 ] || [ -z "$1" ]; then
    echo "usage: bash docs/build.sh OUTDIR" >&2
    exit 2
fi
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$1"
REPLACE_OUT=

# The Python of the course's environment: the active one, else the README's .venv, else python3.
if [ -n "${VIRTUAL_ENV:-}" ] || [ -n "${CONDA_PREFIX:-}" ]; then
    PY=python
elif [ -x "$REPO/.venv/bin/python" ]; then
    PY="$REPO/.venv/bin/python"
else
    PY=python3
fi

# OUTDIR is replaced only when it is a previous build of this site (Sphinx leaves .buildinfo there).
if [ -e "$OUT" ] && [ ! -d "$OUT" ]; then
    echo "docs/build.sh: $OUT exists and is not a folder; give a new folder name" >&2
    exit 2
fi
if [ -d "$OUT" ] && [ -n "$(ls -A "$OUT")" ]; then
    if [ -f "$OUT/.buildinfo" ]; then
        REPLACE_OUT=1
    else
        echo "docs/build.sh: $OUT is not empty and is not a previous site build; give a new or empty folder" >&2
        exit 2
    fi
fi

if ! "$PY" -c "import sphinx, myst_nb, sphinx_book_theme, mathjax" 2>/dev/null; then
    echo "docs/build.sh: installing the site's tools (docs/requirements.txt) into $("$PY" -c 'import sys; print(sys.prefix)')"
    "$PY" -m pip install -q -r "$REPO/docs/requirements.txt"
fi

if [ -n "${REPLACE_OUT:-}" ]; then rm -rf "$OUT"; fi
STAGE="$(mktemp -d)"
trap 'rm -rf "$STAGE"' EXIT
"$PY" "$REPO/docs/site_tools.py" stage "$REPO" "$STAGE/src"
if ! "$PY" -m sphinx -b html -W --keep-going -q -j auto -d "$STAGE/doctrees" "$STAGE/src" "$OUT"; then
    echo "docs/build.sh: the site was not built; each problem above names a copy, $STAGE/src/FILE, of the course's FILE" >&2
    exit 1
fi
"$PY" "$REPO/docs/site_tools.py" check "$REPO" "$OUT"
echo "docs/build.sh: site written to $OUT/index.html"
