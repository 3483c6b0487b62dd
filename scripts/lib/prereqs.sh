# Prerequisite checks shared by scripts/setup and scripts/test (sourced, not run).
# Each `need_*` function adds the Debian/Ubuntu packages that are missing to `missing`;
# `ensure need_a need_b ...` runs them, installs what is missing with apt-get (through sudo unless
# root) and checks again, so a machine without them either gets them or stops with a message that
# names what to install.

missing=()
min_python="3.11"

# The interpreter .venv is made from: $PYTHON, else python3.
python_cmd() {
  echo "${PYTHON:-python3}"
}

need_python() {
  local python
  python=$(python_cmd)
  if ! command -v "$python" >/dev/null; then
    if [ -n "${PYTHON:-}" ]; then
      echo "PYTHON=${PYTHON} is not a command: install it or unset PYTHON." >&2
      exit 1
    fi
    missing+=(python3 python3-venv)
    return
  fi
  local version
  version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  if ! "$python" -c "import sys; sys.exit(sys.version_info[:2] < (${min_python/./, }))"; then
    echo "teleconsult needs Python >= ${min_python}; $(command -v "$python") is ${version}." >&2
    echo "Install the python3 package of Debian 12 or Ubuntu 24.04 (or python${min_python} and" >&2
    echo "python${min_python}-venv on older releases) and run again with PYTHON=python${min_python}." >&2
    exit 1
  fi
  # Debian and Ubuntu ship venv's pip bootstrap separately.
  "$python" -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
}

need_node() {
  command -v node >/dev/null || missing+=(nodejs)
  command -v npm >/dev/null || missing+=(npm)
}

# $1: a command that must be on PATH, $2: the package that provides it.
need_command() {
  command -v "$1" >/dev/null || missing+=("$2")
}

# PostgreSQL's server binaries are off PATH on Debian: /usr/lib/postgresql/<major>/bin.
need_postgresql() {
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
}

# $@: checks, each a need_* function name or a "command:package" word (the command must be on
# PATH, the package provides it).
ensure() {
  missing=()
  run_checks "$@"
  [ ${#missing[@]} -gt 0 ] || return 0
  local wanted=("${missing[@]}")
  install_missing
  missing=()
  run_checks "$@"
  if [ ${#missing[@]} -gt 0 ]; then
    echo "still missing after apt-get install ${wanted[*]}: ${missing[*]}" >&2
    exit 1
  fi
}

run_checks() {
  local check
  for check in "$@"; do
    case "$check" in
      *:*) need_command "${check%%:*}" "${check#*:}" ;;
      *) "$check" ;;
    esac
  done
}

install_missing() {
  [ ${#missing[@]} -gt 0 ] || return 0
  if ! command -v apt-get >/dev/null; then
    echo "missing: ${missing[*]} (Debian/Ubuntu package names): install them and run again." >&2
    exit 1
  fi
  local sudo_cmd=""
  if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null; then
      echo "missing: ${missing[*]}: run as root or install them (apt-get install ${missing[*]})." >&2
      exit 1
    fi
    sudo_cmd="sudo"
  fi
  echo "installing with apt-get: ${missing[*]}" >&2
  # sudo resets the environment: set DEBIAN_FRONTEND inside it.
  $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}"
}
