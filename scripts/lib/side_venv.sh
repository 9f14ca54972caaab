# shellcheck shell=bash
# Sourced: side_venv VENV REQUIREMENTS MODULES [PIP_ARGS...] makes VENV a
# virtual environment for reference and benchmark packages (never needed at
# run time) that sees torch from the product's venv through a .pth file rather
# than a second copy, and installs the pinned REQUIREMENTS into it unless the
# same file was installed before and the Python MODULES (comma-separated)
# import. Messages go to stderr; returns non-zero when a step fails (each step
# is checked: under `side_venv ... || die`, `set -e` does not apply inside).
side_venv() {
  local venv=$1 requirements=$2 modules=$3
  shift 3
  if cmp -s "$venv/.requirements.txt" "$requirements" && "$venv/bin/python" -c "import $modules" 2>/dev/null; then
    return 0
  fi
  local root torch_prefix site
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  torch_prefix=$("$root/scripts/setup") || return 1  # .../site-packages/torch/share/cmake
  [[ -x "$venv/bin/python" ]] || python3 -m venv "$venv" >&2 || return 1
  site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') || return 1
  (cd "$torch_prefix/../../.." && pwd) >"$site/ulmfit-torch.pth" || return 1
  echo "side_venv: installing $requirements into $venv" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check "$@" -r "$requirements" >&2 || return 1
  cp "$requirements" "$venv/.requirements.txt"
}
