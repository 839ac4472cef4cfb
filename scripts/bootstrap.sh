#!/usr/bin/env bash
# Create or reuse the kit's virtual environment (.venv) and install what is missing.
# Used by every make target; safe to run again (it only installs when pyproject.toml changed).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${EXPRESSION_LAB_VENV:-.venv}
PYTHON=${PYTHON:-python3}

say() { printf '\033[1m[expression-lab]\033[0m %s\n' "$*"; }

# EXPRESSION_LAB_PYTHON_ONLY=1: only the virtual environment; the caller installs the system packages and the
# browser libraries (.ci/run does, beside this script).
PYTHON_ONLY=${EXPRESSION_LAB_PYTHON_ONLY:-0}

# System package: open3d needs libusb-1.0 at import time.
if [ "$PYTHON_ONLY" = 1 ]; then
  :
elif ! ldconfig -p 2>/dev/null | grep -q 'libusb-1.0.so.0'; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing the system package libusb-1.0-0 (needed by open3d)…"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libusb-1.0-0 >/dev/null
  else
    say "WARNING: libusb-1.0 is missing, so 'import open3d' will fail. Install it once with:"
    say "    sudo apt-get install libusb-1.0-0      (Debian/Ubuntu)   or   brew install libusb   (macOS)"
  fi
fi

# System package: bubblewrap runs student code in the grading sandbox (python -m course autograde).
if [ "$PYTHON_ONLY" = 1 ]; then
  :
elif ! command -v bwrap >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing the system package bubblewrap (the grading sandbox)…"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null
  else
    say "NOTE: bubblewrap is missing, so autograding cannot sandbox student code. Install it once with:"
    say "    sudo apt-get install bubblewrap      (Debian/Ubuntu; Linux only)"
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -c 'import sys; assert sys.version_info >= (3, 10), "Python 3.10+ is needed"' || {
    say "Python 3.10 or newer is needed (found: $("$PYTHON" --version 2>&1)). Set PYTHON=/path/to/python3.11."; exit 1; }
  say "creating the virtual environment $VENV…"
  "$PYTHON" -m venv "$VENV"
fi

stamp="$VENV/.expression-lab-installed"
want=$(cat pyproject.toml | sha256sum | cut -d' ' -f1)
# Which builds the environment holds (EXPRESSION_LAB_CPU_ONLY when it was installed): pip cannot swap tensorflow for
# tensorflow-cpu in place (both install the same package folder), so a different choice needs a new environment.
builds_file="$VENV/.expression-lab-builds"
builds=$([ "${EXPRESSION_LAB_CPU_ONLY:-0}" = 1 ] && echo cpu-only || echo default)
if [ -f "$builds_file" ] && [ "$(cat "$builds_file")" != "$builds" ]; then
  say "NOTE: $VENV holds the $(cat "$builds_file") builds of tensorflow and open3d, not the $builds ones asked for;"
  say "    to switch, remove it (rm -rf $VENV) and run make again. Going on with the installed builds."
  builds=$(cat "$builds_file")
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  say "installing the kit and its dependencies into $VENV (first time: a few minutes, ~2 GB)…"
  "$VENV/bin/python" -m pip install --upgrade --progress-bar on pip >/dev/null
  if [ "$builds" = cpu-only ]; then  # tensorflow-cpu + open3d-cpu: smaller, no GPU support
    say "EXPRESSION_LAB_CPU_ONLY=1: installing the CPU-only builds of tensorflow and open3d"
    "$VENV/bin/python" -m pip install --progress-bar on $("$VENV/bin/python" scripts/requirements.py --cpu-only)
    "$VENV/bin/python" -m pip install --progress-bar on --no-deps -e .
  else
    "$VENV/bin/python" -m pip install --progress-bar on -e ".[test]"
  fi
  echo "$want" > "$stamp"
  [ -f "$builds_file" ] || echo "$builds" > "$builds_file"
fi

# jsonschema's optional IRI format checker (rfc3987-syntax, pulled in by jupyter-events' jsonschema[format-nongpl])
# builds a Lark grammar when imported: 1.4 s of CPU in every process that imports nbformat, so in every grading
# process of every student (python-jsonschema/jsonschema#1392). Nothing here validates IRIs; without the package
# jsonschema skips that one format, and `pip check` stays clean (it is an extra's requirement).
if [ -d "$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/rfc3987_syntax" ]; then
  "$VENV/bin/python" -m pip uninstall -y -q rfc3987-syntax >/dev/null
fi
# The live widget's browser backend: onnxruntime-web and OpenCV.js from npm into widgets/vendor/ (offline afterwards);
# without npm the widget keeps its kernel backend.
if [ "$PYTHON_ONLY" = 1 ]; then
  :
elif command -v npm >/dev/null; then
  scripts/vendor_js.sh
else
  say "NOTE: npm is missing, so LiveEmotion(model, backend=\"browser\") falls back to the kernel. Install it once with:"
  say "    sudo apt-get install nodejs npm      (Debian/Ubuntu), then run scripts/vendor_js.sh"
fi

# TCP_NODELAY on kernel websockets (the live webcam widget; an editable install cannot place this file)
"$VENV/bin/python" -m widgets.kernel_websocket >/dev/null
# open3d pulls in dash, whose old lab extension makes JupyterLab ask for a rebuild: nothing needs building.
mkdir -p "$VENV/etc/jupyter/labconfig"
echo '{"buildCheck": false, "buildAvailable": false}' > "$VENV/etc/jupyter/labconfig/page_config.json"
# The kit works offline: no "fetch Jupyter news?" prompt, no update checks (both would call a website).
mkdir -p "$VENV/share/jupyter/lab/settings"
echo '{"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": false}}' \
  > "$VENV/share/jupyter/lab/settings/overrides.json"
