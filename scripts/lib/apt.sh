# Sourced by the scripts: installs the Debian packages given that are missing
# (as root, or through sudo), and does nothing when all are there.
#   ensure_debian_packages clang libclang-rt-14-dev
ensure_debian_packages() {
  local missing=() pkg sudo=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  ((${#missing[@]})) || return 0
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "error: missing Debian packages (${missing[*]}) and no root or sudo to install them" >&2; return 1; }
    sudo=(sudo)
  fi
  echo "installing Debian packages: ${missing[*]}" >&2
  "${sudo[@]}" apt-get update -q >&2 || { echo "error: apt-get update failed" >&2; return 1; }
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q "${missing[@]}" >&2 \
    || { echo "error: could not install: ${missing[*]}" >&2; return 1; }
}
