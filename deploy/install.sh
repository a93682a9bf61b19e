#!/usr/bin/env bash
# Install the module's firmware on a Raspberry Pi (3, 4, 5, Zero 2 W; Raspberry Pi OS Bookworm
# or Trixie, 64-bit) or a Jetson (JetPack 6, Ubuntu 22.04), from this checkout:
#
#   sudo deploy/install.sh --board pi-mcp3208 [--user NAME] [--read-only-root] [--usb-midi]
#   deploy/install.sh --board pi-mcp3208 --dry-run     # print every action, change nothing
#   sudo deploy/install.sh --uninstall                  # undo it (the data folder stays)
#   --usb-midi: the Pi's USB-C (Zero 2 W: USB) port becomes a MIDI device for a computer (gadget mode)
#
# Every step checks first whether it is done (a second run does nothing) and is done whole or
# not at all: the runtime is built in a new folder and switched to with one rename, files are
# written to a temporary name and renamed. Before the first step, everything that can be
# checked is: the board, the OS, root, the user, the profile, its overlay.
#
# NEURORACK_SYSROOT: a folder read (and, without --dry-run, written) in place of / for files:
# /proc/device-tree/model, /etc/os-release, /etc/nv_tegra_release, config.txt, /etc/group...
# The tests fake a board with it; commands (apt-get, pip, raspi-config, systemctl) are the
# system's. NEURORACK_DPKG_ARCH stands in for `dpkg --print-architecture` the same way.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SRC="$(cd "$HERE/.." && pwd)"
ROOT="${NEURORACK_SYSROOT:-}"
PREFIX=/opt/neurorack              # the runtime: $PREFIX/venv (a link to the build in use)
DATA=/var/lib/neurorack            # settings, sound library, built engines: stays writable
UNIT=/etc/systemd/system/neurorack.service
PROFILE_D=/etc/profile.d/neurorack.sh
TORCH_CPU_INDEX="${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"

BOARD="" USER_NAME="${SUDO_USER:-}" DRY=0 UNINSTALL=0 READ_ONLY=0 PRINT_UNIT=0 USB_MIDI=0
usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "install.sh: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
  case "$1" in
    --board) BOARD="${2:?--board needs a profile name}"; shift 2 ;;
    --user) USER_NAME="${2:?--user needs a user name}"; shift 2 ;;
    --data) DATA="${2:?--data needs a folder}"; shift 2 ;;
    --prefix) PREFIX="${2:?--prefix needs a folder}"; shift 2 ;;
    --dry-run) DRY=1; shift ;;
    --uninstall) UNINSTALL=1; shift ;;
    --read-only-root) READ_ONLY=1; shift ;;
    --usb-midi) USB_MIDI=1; shift ;;
    --print-unit) PRINT_UNIT=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
STATE="$PREFIX/install.state"   # what this installer changed, for --uninstall

# -- doing, or saying what would be done ---------------------------------------------------
CHANGED=0 REBOOT=0 RESTART=0
act() {  # act "what it does" command args...: run it (or print it, with --dry-run)
  local what="$1"; shift
  CHANGED=1
  if [ "$DRY" = 1 ]; then echo "would: $what"; return 0; fi
  echo "doing: $what"
  "$@" || die "failed: $what (nothing after this step was started; fix it and run again)"
}
ok() { echo "ok: $*"; }
write_file() {  # write_file PATH MODE: stdin to PATH, atomically (temporary name, then rename)
  local path="$ROOT$1" mode="$2" tmp
  mkdir -p "$(dirname "$path")"
  tmp="$(mktemp "$path.XXXXXX")"
  cat > "$tmp" && chmod "$mode" "$tmp" && sync "$tmp" && mv -f "$tmp" "$path"
}
state_add() { [ "$DRY" = 1 ] && return 0; mkdir -p "$ROOT$PREFIX"; grep -qxF "$1" "$ROOT$STATE" 2>/dev/null || echo "$1" >> "$ROOT$STATE"; }
has_state() { grep -qxF "$1" "$ROOT$STATE" 2>/dev/null; }

# -- reading a board profile: the few keys this script needs (neurorack validates the rest) --
toml_get() {  # toml_get FILE TABLE KEY: a string or number value in [TABLE] ("" for the top)
  awk -v want="$2" -v key="$3" '
    /^[[:space:]]*\[/ { t = $0; gsub(/^[[:space:]]*\[+|\]+[[:space:]]*(#.*)?$/, "", t); table = t; next }
    table == want && $0 ~ "^[[:space:]]*" key "[[:space:]]*=" {
      v = $0; sub(/^[^=]*=[[:space:]]*/, "", v)
      if (v ~ /^"/) { sub(/^"/, "", v); sub(/".*$/, "", v) } else { sub(/[[:space:]]*(#.*)?$/, "", v) }
      print v; exit
    }' "$1"
}

# -- what board and OS is this ----------------------------------------------------------------
detect_board() {  # sets KIND (pi|jetson), MODEL (pi3|pi4|pi5|pizero2|jetson), BOARD_NAME
  local model=""
  [ -r "$ROOT/proc/device-tree/model" ] && model="$(tr -d '\0' < "$ROOT/proc/device-tree/model")"
  if [ -e "$ROOT/etc/nv_tegra_release" ]; then
    KIND=jetson MODEL=jetson BOARD_NAME="${model:-NVIDIA Jetson}"
    return
  fi
  BOARD_NAME="$model" KIND=pi
  case "$model" in
    "Raspberry Pi 5"*|"Raspberry Pi Compute Module 5"*|"Raspberry Pi 500"*) MODEL=pi5 ;;
    "Raspberry Pi 4"*|"Raspberry Pi Compute Module 4"*|"Raspberry Pi 400"*) MODEL=pi4 ;;
    "Raspberry Pi 3"*|"Raspberry Pi Compute Module 3"*) MODEL=pi3 ;;
    "Raspberry Pi Zero 2"*) MODEL=pizero2 ;;
    "Raspberry Pi"*) die "unsupported board: $model (needs a 64-bit Raspberry Pi: 3, 4, 5 or Zero 2 W)" ;;
    "") die "unsupported board: neither a Raspberry Pi (no $ROOT/proc/device-tree/model) nor a Jetson (no $ROOT/etc/nv_tegra_release)" ;;
    *) die "unsupported board: $model (a Raspberry Pi 3, 4, 5, Zero 2 W or a Jetson on JetPack 6)" ;;
  esac
}

detect_os() {  # sets OS_NAME, PYTHON
  [ -r "$ROOT/etc/os-release" ] || die "unsupported OS: no $ROOT/etc/os-release"
  local id version codename arch
  id="$(. "$ROOT/etc/os-release"; echo "${ID:-}")"
  version="$(. "$ROOT/etc/os-release"; echo "${VERSION_ID:-}")"
  codename="$(. "$ROOT/etc/os-release"; echo "${VERSION_CODENAME:-}")"
  arch="${NEURORACK_DPKG_ARCH:-$(dpkg --print-architecture 2>/dev/null || uname -m)}"
  PYTHON=python3
  if [ "$KIND" = jetson ]; then
    local release
    release="$(head -n1 "$ROOT/etc/nv_tegra_release" | sed -n 's/^# R\([0-9]*\) .*/\1/p')"
    [ "$release" = 36 ] || die "unsupported OS: L4T R${release:-?} is not JetPack 6 (L4T R36); flash JetPack 6"
    [ "$id" = ubuntu ] && [ "$version" = 22.04 ] || die "unsupported OS: $id $version (JetPack 6 is Ubuntu 22.04)"
    OS_NAME="JetPack 6 (L4T R36, Ubuntu 22.04)"
    return
  fi
  [ "$arch" = arm64 ] || die "unsupported OS: $arch packages (32-bit?); install Raspberry Pi OS 64-bit (arm64)"
  case "$id" in debian|raspbian) ;; *) die "unsupported OS: $id on a Raspberry Pi; install Raspberry Pi OS (64-bit)" ;; esac
  case "$codename" in bookworm|trixie) ;; *) die "unsupported OS: Raspberry Pi OS ${codename:-$version} (needs Bookworm or Trixie, 64-bit)" ;; esac
  [ -e "$ROOT/etc/rpi-issue" ] || die "unsupported OS: plain Debian $codename; install Raspberry Pi OS (its raspi-config, firmware and overlays)"
  OS_NAME="Raspberry Pi OS $codename (arm64)"
}

config_txt() {  # the Pi's boot config: Bookworm and later /boot/firmware, before that /boot
  if [ -f "$ROOT/boot/firmware/config.txt" ]; then echo /boot/firmware/config.txt
  elif [ -f "$ROOT/boot/config.txt" ]; then echo /boot/config.txt
  else die "no config.txt in /boot/firmware or /boot: is the boot partition mounted?"; fi
}

root_is_read_only() { grep -qE '^[^ ]+ / overlay ' "$ROOT/proc/mounts" 2>/dev/null; }
user_exists() { grep -q "^$1:" "$ROOT/etc/passwd" 2>/dev/null; }
group_exists() { grep -q "^$1:" "$ROOT/etc/group" 2>/dev/null; }
in_group() { grep -qE "^$2:[^:]*:[^:]*:(.*,)?$1(,.*)?$" "$ROOT/etc/group" 2>/dev/null; }
apt_installed() { dpkg-query --admindir="$ROOT/var/lib/dpkg" -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
unit_enabled() { [ -L "$ROOT/etc/systemd/system/multi-user.target.wants/neurorack.service" ]; }
systemd_running() { [ -z "$ROOT" ] && [ -d /run/systemd/system ]; }

# -- the unit --------------------------------------------------------------------------------
render_unit() {  # deploy/neurorack.service, filled in (its header comment replaced by one line)
  echo "# Written by deploy/install.sh --board $BOARD: run it again rather than edit this file."
  sed -n '/^\[Unit\]/,$p' "$HERE/neurorack.service" |
    sed -e "s|@USER@|$USER_NAME|g" -e "s|@PREFIX@|$PREFIX|g" -e "s|@BOARD@|$BOARD|g" -e "s|@DATA@|$DATA|g"
}

# -- uninstall -------------------------------------------------------------------------------
uninstall() {
  [ "$DRY" = 1 ] || [ "$(id -u)" = 0 ] || die "run it as root: sudo $0 --uninstall"
  root_is_read_only && die "the root file system is read-only now (overlay on): sudo raspi-config nonint do_overlayfs 1, reboot, then uninstall"
  [ -e "$ROOT$PREFIX" ] || [ -e "$ROOT$UNIT" ] || { echo "nothing to undo: neurorack is not installed"; exit 0; }
  if unit_enabled || [ -e "$ROOT$UNIT" ]; then
    act "stop and disable the neurorack service" systemctl disable --now neurorack.service
    act "remove $UNIT" rm -f "$ROOT$UNIT"
  fi
  [ -e "$ROOT$PROFILE_D" ] && act "remove $PROFILE_D" rm -f "$ROOT$PROFILE_D"
  local line
  while read -r line; do
    case "$line" in
      overlay=*) local conf; conf="$(config_txt)"
        act "remove the neurorack block (dtoverlay=${line#overlay=}) from $conf" \
          sed -i '/^# neurorack: begin/,/^# neurorack: end/d' "$ROOT$conf" ;;
      spi=enabled) act "disable SPI: raspi-config nonint do_spi 1" raspi-config nonint do_spi 1 ;;
      i2c=enabled) act "disable I2C: raspi-config nonint do_i2c 1" raspi-config nonint do_i2c 1 ;;
      group=*) local user="${line#group=}"; user="${user%%:*}"; local group="${line##*:}"
        act "remove $user from group $group" gpasswd -d "$user" "$group" ;;
      udev=*) act "remove ${line#udev=}" rm -f "$ROOT${line#udev=}" ;;
      modules=*) act "remove ${line#modules=}" rm -f "$ROOT${line#modules=}" ;;
    esac
  done < "$( [ -f "$ROOT$STATE" ] && echo "$ROOT$STATE" || echo /dev/null)"
  act "remove the runtime $PREFIX" rm -rf "$ROOT$PREFIX"
  echo "kept: $DATA (settings, sounds, engines): remove it by hand if you want them gone"
  exit 0
}

# -- checks before anything is changed -------------------------------------------------------
[ "$UNINSTALL" = 1 ] && uninstall
[ -n "$BOARD" ] || die "say which board profile: --board NAME (profiles: $(cd "$SRC/hardware" && ls *.toml | sed 's/\.toml$//' | tr '\n' ' '))"
[[ "$BOARD" =~ ^[A-Za-z0-9][A-Za-z0-9_-]*$ ]] || die "--board takes a profile name from hardware/ (letters, digits, - and _), not $BOARD"
[ -z "$USER_NAME" ] || [[ "$USER_NAME" =~ ^[a-z_][a-z0-9_-]*$ ]] || die "--user takes a user name, not $USER_NAME"
PROFILE="$SRC/hardware/$BOARD.toml"
[ -f "$PROFILE" ] || die "no board profile $BOARD (profiles: $(cd "$SRC/hardware" && ls *.toml | sed 's/\.toml$//' | tr '\n' ' '))"
if [ "$PRINT_UNIT" = 1 ]; then [ -n "$USER_NAME" ] || USER_NAME=neurorack; render_unit; exit 0; fi

validate_profile() {  # validate_profile PYTHON: neurorack's own check of the whole profile
  local out
  out="$(cd / && PYTHONPATH="$SRC" NEURORACK_HARDWARE="$SRC/hardware" "$1" -c \
    'import sys; from neurorack.hal.profile import load_profile; load_profile(sys.argv[1])' "$BOARD" 2>&1)" && return 0
  case "$out" in
    *"No module named"*) return 2 ;;   # this Python lacks tomli (3.10): checked by the runtime's, later
    *) die "$(echo "$out" | tail -n 1 | sed 's/^[A-Za-z.]*Error: //')" ;;
  esac
}

detect_board
detect_os
PROFILE_CHECKED=0
validate_profile python3 && PROFILE_CHECKED=1 || true
GPIO="$(toml_get "$PROFILE" "" gpio)"
OVERLAY="$(toml_get "$PROFILE" audio overlay)"
OUTPUT="$(toml_get "$PROFILE" audio output)"
BACKEND="$(toml_get "$PROFILE" model backend)"
ADC="$(toml_get "$PROFILE" adc chip)"
DISPLAY_BUS="$(toml_get "$PROFILE" display interface)"
case "$KIND:$GPIO" in
  pi:rpi|jetson:jetson) ;;
  *) die "profile $BOARD is for a ${GPIO/rpi/Raspberry Pi} board, and this is a $BOARD_NAME" ;;
esac
if [ "$KIND" = pi ]; then
  BACKEND="${BACKEND:-onnx}"
  case "$BACKEND" in onnx|cpu|auto) ;; *) die "profile $BOARD: backend $BACKEND needs a GPU; a Raspberry Pi runs onnx (or cpu)" ;; esac
else
  BACKEND="${BACKEND:-auto}"
fi
echo "board: $BOARD_NAME ($MODEL); OS: $OS_NAME; profile: $BOARD (audio: ${OUTPUT:-default}, backend: $BACKEND)"
[ "$DRY" = 1 ] || [ "$(id -u)" = 0 ] || die "run it as root: sudo $0 --board $BOARD (or look first: --dry-run)"
[ -n "$USER_NAME" ] || die "say which user the module runs as: --user NAME (sudo sets it for you)"
[ "$USER_NAME" != root ] || die "the module should not run as root: --user NAME (a normal user; it gets the gpio, spi, i2c and audio groups)"
user_exists "$USER_NAME" || die "no user $USER_NAME on this system: create it first (sudo adduser $USER_NAME) or name another with --user"
root_is_read_only && die "the root file system is read-only now (overlay on): sudo raspi-config nonint do_overlayfs 1, reboot, then run this again"
if [ "$KIND" = pi ]; then
  CONFIG="$(config_txt)"
  OVERLAYS="$(dirname "$CONFIG")/overlays"
  if [ -n "$OVERLAY" ] && [ ! -f "$ROOT$OVERLAYS/$OVERLAY.dtbo" ]; then
    die "profile $BOARD names the overlay $OVERLAY, which this board lacks ($OVERLAYS/$OVERLAY.dtbo); update the firmware (sudo apt full-upgrade) or fix [audio] overlay"
  fi
else
  [ -z "$OVERLAY" ] || die "profile $BOARD names an overlay ($OVERLAY): on a Jetson set the header's I2S function with sudo /opt/nvidia/jetson-io/jetson-io.py, and remove overlay from the profile"
  if { [[ "$ADC" == mcp* ]] || [ "$DISPLAY_BUS" = spi ]; } && ! ls "$ROOT"/dev/spidev* >/dev/null 2>&1; then
    die "SPI is off on this Jetson's header: sudo /opt/nvidia/jetson-io/jetson-io.py, Configure Jetson 40pin Header, Configure header pins manually, enable spi1, save and reboot; then run this again"
  fi
  case "$BACKEND" in cuda|tensorrt|auto)
    [ -n "$ROOT" ] || "$PYTHON" -c "import torch" 2>/dev/null || [ "$BACKEND" = auto ] ||
      die "JetPack's torch is missing (backend $BACKEND): install NVIDIA's PyTorch for JetPack 6 first; this installer never installs another torch" ;;
  esac
fi
if [ "$READ_ONLY" = 1 ]; then
  [ "$KIND" = pi ] || die "--read-only-root uses raspi-config's overlay file system: Raspberry Pi OS only"
  awk -v d="$DATA" '$1 !~ /^#/ && $2 == d { found = 1 } END { exit !found }' "$ROOT/etc/fstab" 2>/dev/null ||
    die "--read-only-root: $DATA is not its own file system in /etc/fstab, so it would be read-only too (and lose settings at each boot); give it a partition (README: On a Raspberry Pi) or choose one with --data DIR"
fi

if [ "$USB_MIDI" = 1 ]; then
  [ "$KIND" = pi ] || die "--usb-midi is for a Raspberry Pi (its USB device controller, dwc2); a Jetson's USB device mode is set with NVIDIA's l4t-usb-device-mode"
  [ "$MODEL" != pi3 ] || die "--usb-midi: a Raspberry Pi 3 has no USB port that can be a device; a Pi 4 or 5 (USB-C) or a Zero 2 W can"
fi

if [ "$KIND" = pi ] && [ "$DRY" = 0 ]; then
  command -v raspi-config >/dev/null || die "raspi-config is missing: sudo apt install raspi-config (it enables SPI and I2C)"
fi

# -- 1. Debian packages ----------------------------------------------------------------------
# gcc and the headers build RPi.GPIO and spidev (no aarch64 wheels); alsa-utils: aplay, amixer.
PACKAGES=(python3-venv python3-dev gcc libsndfile1 libportaudio2 alsa-utils i2c-tools)
MISSING=()
for p in "${PACKAGES[@]}"; do apt_installed "$p" || MISSING+=("$p"); done
if [ ${#MISSING[@]} -gt 0 ]; then
  if [ "$DRY" = 0 ]; then
    apt-get update -qq || die "no network: apt cannot reach its sources (apt-get update failed); connect the board and run again"
  fi
  act "apt-get install ${MISSING[*]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${MISSING[@]}"
else
  ok "Debian packages: ${PACKAGES[*]}"
fi

# -- 2. the runtime: a venv with the package, the GPIO library, spidev, smbus2, the backend ---
case "$MODEL" in
  pi5) EXTRA=pi5 ;;                 # rpi-lgpio: RPi.GPIO's API on the Pi 5's RP1
  pi3|pi4|pizero2) EXTRA=pi ;;      # RPi.GPIO
  jetson) EXTRA=jetson ;;           # Jetson.GPIO
esac
PIP_ARGS=(--no-cache-dir --disable-pip-version-check -q)
VENV_ARGS=()
TORCH_STEP=""
if [ "$KIND" = jetson ]; then
  VENV_ARGS=(--system-site-packages)   # JetPack's torch and TensorRT, never another
  PIP_ARGS+=(numpy\<2)                 # JetPack's torch is built against numpy 1
elif [ "$BACKEND" = cpu ]; then          # (auto on a Pi: the torch-free onnx backend, nothing more)
  TORCH_STEP="$TORCH_SPEC"             # the CPU-only build, from PyTorch's own index: never PyPI's CUDA one
fi
source_hash() {  # what the runtime is built from: the sources and the options
  { (cd "$SRC" && find neurorack hardware ui models setup.py pyproject.toml -type f \
       ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum)
    echo "$EXTRA ${VENV_ARGS[*]} ${PIP_ARGS[*]} $TORCH_STEP $TORCH_CPU_INDEX"; } | sha256sum | cut -c1-12
}
STAMP="$(source_hash)"
build_runtime() {  # in a new folder; switched to with one rename once it works, removed if not
  local prefix="$ROOT$PREFIX" build="$ROOT$PREFIX/venv-$STAMP" log
  local made="$prefix"   # the first folder this makes, removed again if the build fails
  while [ ! -d "$(dirname "$made")" ]; do made="$(dirname "$made")"; done
  [ -d "$made" ] && made=""
  rm -rf "$build" "$prefix/venv.next"
  mkdir -p "$prefix"
  log="$(mktemp "${TMPDIR:-/tmp}/neurorack-pip.XXXXXX")"
  if ! { "$PYTHON" -m venv "${VENV_ARGS[@]}" "$build" &&
         { [ -z "$TORCH_STEP" ] || "$build/bin/pip" install "${PIP_ARGS[@]}" --index-url "$TORCH_CPU_INDEX" "$TORCH_STEP"; } &&
         "$build/bin/pip" install "${PIP_ARGS[@]}" "$SRC[$EXTRA]" &&
         "$build/bin/neurorack" --help >/dev/null; } > "$log" 2>&1; then
    rm -rf "$build"
    [ -z "$made" ] || rm -rf "$made"
    die "pip could not install the runtime (no network?): $(grep -E 'ERROR|Error' "$log" | tail -n 1 | cut -c1-200); nothing was switched: run again when online (pip's log: $log)"
  fi
  rm -f "$log"
  echo "$STAMP" > "$build/.neurorack-stamp"
  ln -s "venv-$STAMP" "$prefix/venv.next" && mv -T "$prefix/venv.next" "$prefix/venv"   # one rename
  find "$prefix" -maxdepth 1 -name 'venv-*' ! -name "venv-$STAMP" -exec rm -rf {} +
}
if [ "$(cat "$ROOT$PREFIX/venv/.neurorack-stamp" 2>/dev/null)" = "$STAMP" ]; then
  ok "runtime $PREFIX/venv is built from this checkout"
else
  what="build the runtime $PREFIX/venv-$STAMP, then point $PREFIX/venv at it: python3 -m venv${VENV_ARGS[*]:+ ${VENV_ARGS[*]}}"
  [ -n "$TORCH_STEP" ] && what="$what; pip install $TORCH_STEP --index-url $TORCH_CPU_INDEX"
  act "$what; pip install $SRC[$EXTRA]" build_runtime
fi

if [ "$PROFILE_CHECKED" = 0 ] && [ "$DRY" = 0 ]; then validate_profile "$ROOT$PREFIX/venv/bin/python"; fi

# -- 3. SPI, I2C, the audio overlay ----------------------------------------------------------
if [ "$KIND" = pi ]; then
  for bus in spi i2c; do
    if grep -qE "^(device_tree_param|dtparam)=([^,]*,)*${bus}(_arm)?(=(on|true|yes|1))?(,.*)?$" "$ROOT$CONFIG"; then
      ok "${bus^^} is on"
    else
      act "enable ${bus^^}: raspi-config nonint do_$bus 0" raspi-config nonint "do_$bus" 0
      state_add "$bus=enabled"
      REBOOT=1
    fi
  done
  if [ -z "$OVERLAY" ]; then
    ok "audio output ${OUTPUT:-default} needs no overlay"
  elif grep -qE "^dtoverlay=$OVERLAY([,:].*)?$" "$ROOT$CONFIG"; then
    ok "overlay $OVERLAY is in $CONFIG"
  else
    add_overlay() {
      { cat "$ROOT$CONFIG"; printf '\n# neurorack: begin (deploy/install.sh: the %s audio output)\n[all]\ndtoverlay=%s\n# neurorack: end\n' \
          "$OUTPUT" "$OVERLAY"; } | write_file "$CONFIG" 644
    }
    act "add dtoverlay=$OVERLAY to $CONFIG" add_overlay
    state_add "overlay=$OVERLAY"
    REBOOT=1
  fi
  if [ "$USB_MIDI" = 1 ]; then  # USB gadget mode: the port is a class-compliant MIDI device (g_midi's f_midi)
    if grep -qE "^dtoverlay=dwc2([,:].*)?$" "$ROOT$CONFIG"; then ok "dtoverlay=dwc2 is in $CONFIG"; else
      add_dwc2() {
        { cat "$ROOT$CONFIG"; printf '\n# neurorack: begin (deploy/install.sh --usb-midi: the USB port as a device)\n[all]\ndtoverlay=dwc2,dr_mode=peripheral\n# neurorack: end\n'; } |
          write_file "$CONFIG" 644
      }
      act "add dtoverlay=dwc2,dr_mode=peripheral to $CONFIG (USB device mode)" add_dwc2
      state_add "overlay=dwc2"
      REBOOT=1
    fi
    GADGET=/etc/modules-load.d/neurorack-usb-midi.conf
    if [ -f "$ROOT$GADGET" ]; then ok "the USB MIDI gadget loads at boot"; else
      act "load the USB MIDI gadget at boot (dwc2, g_midi): $GADGET" write_file "$GADGET" 644 <<< $'dwc2\ng_midi'
      state_add "modules=$GADGET"
      REBOOT=1
    fi
  fi
else
  if [[ "$ADC" == mcp* ]] || [ "$DISPLAY_BUS" = spi ]; then
    if [ -f "$ROOT/etc/modules-load.d/neurorack.conf" ]; then ok "spidev loads at boot"; else
      act "load spidev at boot: /etc/modules-load.d/neurorack.conf" write_file /etc/modules-load.d/neurorack.conf 644 <<< "spidev"
      state_add "modules=/etc/modules-load.d/neurorack.conf"
    fi
  fi
  ok "I2C is on (JetPack enables the header's I2C buses)"
fi

# -- 4. groups -------------------------------------------------------------------------------
for group in gpio spi i2c audio; do
  if in_group "$USER_NAME" "$group"; then ok "$USER_NAME is in group $group"; continue; fi
  group_exists "$group" || act "create group $group" groupadd --system "$group"
  act "add $USER_NAME to group $group" usermod -aG "$group" "$USER_NAME"
  state_add "group=$USER_NAME:$group"
  REBOOT=1
done
if [ "$KIND" = jetson ]; then
  RULES=/etc/udev/rules.d/99-neurorack-gpio.rules
  if [ -f "$ROOT$RULES" ]; then ok "Jetson.GPIO's udev rules are in place"; else
    copy_rules() { "$PREFIX/venv/bin/python" -c "import Jetson.GPIO, pathlib; print(pathlib.Path(Jetson.GPIO.__file__).parent / '99-gpio.rules')" |
                   xargs cat | write_file "$RULES" 644 && { udevadm control --reload-rules && udevadm trigger || true; }; }
    act "install Jetson.GPIO's udev rules as $RULES (the gpio group may use the pins)" copy_rules
    state_add "udev=$RULES"
  fi
fi

# -- 5. the data folder, the unit ------------------------------------------------------------
if [ -d "$ROOT$DATA/boards" ] && [ -d "$ROOT$DATA/sounds" ] && [ -d "$ROOT$DATA/cache" ]; then
  ok "data folder $DATA (settings, sounds, engines)"
else
  act "create the data folder $DATA (boards/, sounds/, cache/) owned by $USER_NAME" \
    sh -c "mkdir -p '$ROOT$DATA/boards' '$ROOT$DATA/sounds' '$ROOT$DATA/cache' && chown -R '$USER_NAME:' '$ROOT$DATA'"
fi
if [ -f "$ROOT$PROFILE_D" ]; then ok "$PROFILE_D"; else
  act "write $PROFILE_D (neurorack on PATH; the service's settings and sounds in a shell)" \
    write_file "$PROFILE_D" 644 <<EOF
# neurorack (deploy/install.sh): the command, and the module's settings and sounds
export PATH="$PREFIX/venv/bin:\$PATH"
export NEURORACK_CONFIG="$DATA/boards" NEURORACK_SOUNDS="$DATA/sounds" NEURORACK_ENGINES="$DATA/engines"
EOF
fi
if [ -f "$ROOT$UNIT" ] && [ "$(render_unit)" = "$(cat "$ROOT$UNIT")" ]; then
  ok "$UNIT (board $BOARD)"
else
  write_unit() { render_unit | write_file "$UNIT" 644; }
  act "write $UNIT (board $BOARD, user $USER_NAME)" write_unit
  RESTART=1
fi
if unit_enabled; then ok "neurorack.service is enabled"; else
  act "enable neurorack.service (starts at boot)" systemctl enable neurorack.service
  RESTART=1
fi
if [ "$RESTART" = 1 ] && ! systemd_running; then
  echo "note: systemd is not running here (an image or a chroot): the service starts at the next boot"
elif [ "$RESTART" = 1 ] && [ "$REBOOT" = 1 ]; then
  act "reload systemd (the service starts after the reboot, with SPI, I2C and the overlay on)" systemctl daemon-reload
elif [ "$RESTART" = 1 ]; then
  act "restart neurorack.service" sh -c "systemctl daemon-reload && systemctl restart neurorack.service"
fi

# -- 6. read-only root (last: after it, the root takes no more changes) -----------------------
if [ "$READ_ONLY" = 1 ]; then
  if grep -qw "boot=overlay" "$ROOT$(dirname "$CONFIG")/cmdline.txt" 2>/dev/null; then ok "overlay file system is on (from the next boot)"; else
    act "turn on the overlay file system (read-only root): raspi-config nonint do_overlayfs 0" raspi-config nonint do_overlayfs 0
    state_add "overlayfs=enabled"
  fi
  echo "read-only root: $DATA stays writable (its own file system); everything else resets at each boot"
fi

if [ "$DRY" = 1 ]; then
  [ "$CHANGED" = 1 ] && echo "dry run: nothing was changed" || echo "dry run: nothing to do"
elif [ "$CHANGED" = 1 ]; then
  echo "done: neurorack runs as $USER_NAME on board $BOARD; settings and sounds in $DATA; log: journalctl -u neurorack"
  if [ "$REBOOT" = 1 ]; then echo "reboot once (sudo reboot) for SPI, I2C, the audio overlay and the groups to take effect"; fi
  if [ "$USB_MIDI" = 1 ]; then echo "USB MIDI: after the reboot, connect the Pi's USB-C (Zero 2 W: USB) port to a computer; it appears as a MIDI device (f_midi), which the module listens to"; fi
else
  echo "nothing to do: neurorack is installed and up to date"
fi
