# shellcheck shell=bash
# What `make run`, `make test`, `make bench`, `make chaos` and `make up` need
# on the machine, checked before anything is downloaded or built:
#
#   prerequisites stack   Java 17 or newer, Maven, curl (the native stack)
#   prerequisites build   the above, plus cargo and what librdkafka's bundled
#                         C build needs (a C and C++ compiler, make,
#                         pkg-config, OpenSSL's headers)
#   prerequisites test    the above, plus Python 3 with its venv module and
#                         Node.js with npm (the storefront examples and the
#                         OpenAPI fuzzer run under `make test`)
#
# On a Debian-family machine, run as root, whatever is missing is installed
# with apt-get (one `apt-get install`, after `apt-get update`). Otherwise
# the script stops at once, naming each missing piece and the command that
# installs it. Rust itself is never installed here: its installer belongs to
# the user (https://rustup.rs). PostgreSQL comes later, from scripts/stack.sh.

# prereq_java_major JAVA - the major version of that java, or nothing.
prereq_java_major() {
  "$1" -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ { print $2 }'
}

# prereq_apt_has PACKAGE - apt knows an installable version of it.
prereq_apt_has() {
  apt-cache policy "$1" 2>/dev/null | grep -q 'Candidate: [0-9]'
}

# The Java package to install: 21 where the release has it (Apicurio then
# needs no second runtime), else 17, else the release's default.
prereq_java_package() {
  local p
  for p in openjdk-21-jre-headless openjdk-17-jre-headless; do
    if prereq_apt_has "$p"; then
      echo "$p"
      return 0
    fi
  done
  echo default-jre-headless
}

# stack_uses_docker - the stack runs from compose/ (a working Docker engine,
# and CHORUS_STACK is not `native`).
stack_uses_docker() {
  [[ ${CHORUS_STACK:-} != native ]] && command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1
}

# prerequisites stack|build|test
prerequisites() {
  local what=$1 missing=() packages=() major
  if stack_uses_docker; then
    [[ $what != stack ]] || return 0 # compose brings Kafka, the registry and PostgreSQL
  elif ! command -v java >/dev/null 2>&1; then
    missing+=("Java 17 or newer")
    packages+=(java)
  else
    major=$(prereq_java_major java)
    if [[ ! ${major:-0} =~ ^[0-9]+$ ]] || ((${major:-0} < 17)); then
      missing+=("Java 17 or newer (java is ${major:-of unknown version})")
      packages+=(java)
    fi
  fi
  if ! stack_uses_docker; then
    command -v mvn >/dev/null 2>&1 || { missing+=(Maven); packages+=(maven); }
  fi
  command -v curl >/dev/null 2>&1 || { missing+=(curl); packages+=(curl); }
  if [[ $what == test ]]; then
    if ! command -v python3 >/dev/null 2>&1; then
      missing+=("Python 3"); packages+=(python3 python3-venv)
    elif ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
      missing+=("Python's venv module"); packages+=(python3-venv)
    fi
    command -v node >/dev/null 2>&1 || { missing+=(Node.js); packages+=(nodejs); }
    command -v npm >/dev/null 2>&1 || { missing+=(npm); packages+=(npm); }
  fi
  if [[ $what == build || $what == test ]]; then
    command -v cc >/dev/null 2>&1 || { missing+=("a C compiler"); packages+=(gcc); }
    command -v c++ >/dev/null 2>&1 || { missing+=("a C++ compiler"); packages+=(g++); }
    command -v make >/dev/null 2>&1 || { missing+=(make); packages+=(make); }
    command -v pkg-config >/dev/null 2>&1 || { missing+=(pkg-config); packages+=(pkg-config); }
    if ! command -v pkg-config >/dev/null 2>&1 || ! pkg-config --exists openssl 2>/dev/null; then
      missing+=("OpenSSL's headers")
      packages+=(libssl-dev)
    fi
  fi
  local rust=1
  if [[ $what != stack ]] && ! command -v cargo >/dev/null 2>&1; then
    rust=0
    missing+=("Rust (cargo)")
  fi
  if ((${#packages[@]} == 0 && rust)); then return 0; fi

  local apt=0
  command -v apt-get >/dev/null 2>&1 && apt=1
  if ((${#packages[@]})) && ((apt && EUID == 0 && rust)); then
    local i
    for i in "${!packages[@]}"; do
      [[ ${packages[$i]} == java ]] && packages[i]=$(prereq_java_package)
    done
    printf '==> prerequisites: installing %s (missing: %s)\n' "${packages[*]}" "$(prereq_join "${missing[@]}")"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}"; } >&2; then
      echo "prerequisites: apt-get install ${packages[*]} failed" >&2
      return 1
    fi
    return 0
  fi

  # Not installable here: say what is missing and how to install it.
  {
    echo "missing: $(prereq_join "${missing[@]}")"
    if ((${#packages[@]})); then
      local shown=() p
      for p in "${packages[@]}"; do
        if [[ $p != java ]]; then
          shown+=("$p")
        elif ((apt)); then
          shown+=("$(prereq_java_package)")
        else
          shown+=(openjdk-17-jre-headless)
        fi
      done
      if ((apt)); then
        echo "install with: sudo apt-get update && sudo apt-get install -y ${shown[*]}"
        echo "(or run this command as root: it then installs them itself)"
      else
        echo "install them with your system's package manager (Debian names: ${shown[*]})"
      fi
    fi
    ((rust)) || echo "install Rust with: curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh"
  } >&2
  return 1
}

prereq_join() {
  local IFS=,
  local joined="$*"
  echo "${joined//,/, }"
}
