#!/usr/bin/env bash
# `make check-arm64`: deploy/install.sh on an emulated Raspberry Pi, here.
#
# Builds a Debian Bookworm arm64 root with debootstrap (once; kept in $ARM64_CACHE/base) and
# runs it under qemu-user-static. In a fresh copy of it: deploy/install.sh --board pi-mcp3208,
# twice (the second run must change nothing), systemd-analyze verify on the unit it wrote, the
# installed runtime's size, then an impact and an offline --record of the demo patch rendered
# with that runtime, and the time from starting the unit's command to the first playable gate.
#
# Faked, because a chroot cannot have them: the device tree (/proc is not mounted in the chroot;
# /proc/device-tree/model is a plain file there, "Raspberry Pi 4 Model B"), the boot partition
# (/boot/firmware/config.txt and empty overlay files), raspi-config (a stand-in that edits
# config.txt as raspi-config's nonint do_spi/do_i2c/do_overlayfs do; Raspberry Pi OS's own is
# not in Debian), /etc/rpi-issue (what marks Raspberry Pi OS), and systemd as PID 1 (the
# installer sees none and only enables the unit; this script runs the unit's command itself,
# as its user with its environment). /sys is not mounted either: under qemu-user, torch and
# onnxruntime crash reading the host's /sys/devices/system/cpu.
#
# ARM64_RESUME=1 reuses the last run's root instead of a fresh copy (after a fix to a later step).
# Needs root, debootstrap, qemu-user-static and binfmt-support (installed if missing), and the
# network (Debian's mirror, PyPI). Writes the report to $ARM64_REPORT.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SRC="$(cd "$HERE/.." && pwd)"
CACHE="$(mkdir -p "${ARM64_CACHE:-$SRC/build/arm64}" && cd "${ARM64_CACHE:-$SRC/build/arm64}" && pwd)"
REPORT="${ARM64_REPORT:-$SRC/out/check-arm64/report.txt}"
# The Debian mirror: $DEBIAN_MIRROR, else the one this host's apt uses.
MIRROR="${DEBIAN_MIRROR:-$(cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null |
  grep -E '^(URIs:|deb )' | grep -v security | head -n 1 | sed -E 's/^URIs: *//; s/^deb (\[[^]]*\] )?//; s/ .*//' || true)}"
[ -n "$MIRROR" ] || { echo "check-arm64: no Debian mirror in this host's apt sources: set DEBIAN_MIRROR" >&2; exit 1; }
# ARM64_STEPS: the steps to run after the install (default all of them; with ARM64_RESUME=1,
# to finish a run whose later step failed): install again verify size torch render record plan playable.
ARM64_STEPS="${ARM64_STEPS:-install again verify size torch render record plan playable}"
want() { [[ " $ARM64_STEPS " == *" $1 "* ]]; }
BASE="$CACHE/base" RUN="$CACHE/run"
# Inside the emulated root: the Pi user the check creates, and where its checkout lies, as a
# musician would clone it (not a path of this machine: every use is under $RUN or in_root).
PI_USER=musician
PI_CHECKOUT="/home/$PI_USER/neurorack"
# torch for the render step, where the runtime has no torch-free backend yet: a release whose
# PyPI wheel for aarch64 is the CPU-only build (newer ones there are CUDA builds; PyTorch's own
# CPU index is not reachable from every machine).
CHECK_TORCH="${CHECK_TORCH:-torch==2.5.1}"

[ "$(id -u)" = 0 ] || { echo "check-arm64: needs root (debootstrap, chroot): sudo make check-arm64" >&2; exit 1; }
mkdir -p "$(dirname "$REPORT")"
: > "$REPORT"
exec 3>&1  # the terminal, for lines logged from inside a step (whose output goes to step.log)
log() { echo "$*" | tee -a "$REPORT" >&3; }
step() {  # step NAME command...: run it, log how long it took; stop at the first failure
  local name="$1" start end; shift
  start=$(date +%s.%N)
  if ! "$@" > "$CACHE/step.log" 2>&1; then
    tail -n 30 "$CACHE/step.log" | tee -a "$REPORT"
    log "FAILED: $name"
    exit 1
  fi
  end=$(date +%s.%N)
  log "$(printf '%-52s %7.1f s' "$name" "$(echo "$end - $start" | bc)")"
}
in_root() {
  chroot "$RUN" /usr/bin/env -i PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt "$@"
}
cleanup() {
  for m in "$RUN/proc" "$RUN/dev/shm" "$RUN/dev/pts" "$RUN/dev"; do mountpoint -q "$m" && umount -l "$m"; done
  return 0
}
bind_dev() {  # the host's devices, but shared memory of the root's own (render slabs, JACK)
  mount --bind /dev "$RUN/dev"
  mount --bind /dev/pts "$RUN/dev/pts"
  mount -t tmpfs -o mode=1777 tmpfs "$RUN/dev/shm"
}
trap cleanup EXIT

host_tools() {
  local missing=()
  for p in debootstrap qemu-user-static binfmt-support bc; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; fi
  update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
  [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || { echo "qemu-aarch64 is not registered with binfmt_misc" >&2; return 1; }
}

make_base() {
  [ -e "$BASE/.debootstrap-complete" ] && { echo "reusing $BASE"; return 0; }
  rm -rf "$BASE"
  debootstrap --arch=arm64 --variant=minbase --include=systemd,python3,ca-certificates bookworm "$BASE" "$MIRROR"
  touch "$BASE/.debootstrap-complete"
}

fresh_root() {
  cleanup
  rm -rf "$RUN"
  cp -a "$BASE" "$RUN"
  cp /etc/resolv.conf "$RUN/etc/resolv.conf"
  # The host's trust: where the host reaches PyPI through a TLS proxy, the root needs its CA too.
  cp /etc/ssl/certs/ca-certificates.crt "$RUN/etc/ssl/certs/ca-certificates.crt"
  bind_dev
}

reuse_root() {  # ARM64_RESUME=1: the root of the last run, with this checkout copied in again
  [ -d "$RUN/opt" ] || { echo "no earlier run in $RUN to resume" >&2; return 1; }
  cleanup
  bind_dev
  copy_checkout
}

copy_checkout() {
  rm -rf "$RUN$PI_CHECKOUT"
  mkdir -p "$RUN$PI_CHECKOUT"
  (cd "$SRC" && git ls-files -co --exclude-standard -z | xargs -0 -I{} cp --parents -a {} "$RUN$PI_CHECKOUT/")
  in_root chown -R "$PI_USER": "$PI_CHECKOUT"
}

fake_pi() {
  mkdir -p "$RUN/proc/device-tree" "$RUN/boot/firmware/overlays"
  printf 'Raspberry Pi 4 Model B Rev 1.5\0' > "$RUN/proc/device-tree/model"
  echo "Raspberry Pi reference 2024-11-19 (emulated: deploy/check-arm64.sh)" > "$RUN/etc/rpi-issue"
  printf '# Raspberry Pi OS config.txt (as shipped, abridged)\ndtparam=audio=on\ncamera_auto_detect=1\nauto_initramfs=1\narm_64bit=1\n[all]\n' \
    > "$RUN/boot/firmware/config.txt"
  echo "console=serial0,115200 console=tty1 root=PARTUUID=00000000-02 rootfstype=ext4 fsck.repair=yes rootwait" \
    > "$RUN/boot/firmware/cmdline.txt"
  touch "$RUN/boot/firmware/overlays/rpi-proto.dtbo" "$RUN/boot/firmware/overlays/hifiberry-dac.dtbo"
  cat > "$RUN/usr/local/bin/raspi-config" <<'EOF'
#!/bin/sh
# Stand-in for Raspberry Pi OS's raspi-config (nonint do_spi, do_i2c, do_overlayfs): it edits
# config.txt and cmdline.txt as those do, and logs each call.
echo "raspi-config $*" >> /var/log/raspi-config.calls
CONFIG=/boot/firmware/config.txt
set_param() {  # set_param spi on|off
  if grep -qE "^#?dtparam=$1=" "$CONFIG"; then sed -i -E "s/^#?dtparam=$1=.*/dtparam=$1=$2/" "$CONFIG"
  else sed -i "0,/^\[all\]/s//dtparam=$1=$2\n[all]/" "$CONFIG"; grep -q "^dtparam=$1=$2" "$CONFIG" || echo "dtparam=$1=$2" >> "$CONFIG"; fi
}
[ "$1" = nonint ] || { echo "this stand-in only runs nonint" >&2; exit 1; }
case "$2:$3" in
  do_spi:0) set_param spi on ;; do_spi:1) set_param spi off ;;
  do_i2c:0) set_param i2c_arm on ;; do_i2c:1) set_param i2c_arm off ;;
  do_overlayfs:0) sed -i 's/^/boot=overlay /' /boot/firmware/cmdline.txt ;;
  do_overlayfs:1) sed -i 's/boot=overlay //' /boot/firmware/cmdline.txt ;;
  *) echo "raspi-config stand-in: $2 $3 is not emulated" >&2; exit 1 ;;
esac
EOF
  chmod +x "$RUN/usr/local/bin/raspi-config"
  in_root useradd --create-home --shell /bin/bash "$PI_USER"
  copy_checkout
}

install_runtime() { in_root env SUDO_USER="$PI_USER" "$PI_CHECKOUT/deploy/install.sh" --board pi-mcp3208; }
install_again() {
  in_root env SUDO_USER="$PI_USER" "$PI_CHECKOUT/deploy/install.sh" --board pi-mcp3208 | tee "$CACHE/second.log"
  grep -q "^nothing to do" "$CACHE/second.log" && ! grep -q "^doing:" "$CACHE/second.log"
}
verify_unit() { in_root systemd-analyze verify /etc/systemd/system/neurorack.service; }
runtime_size() {
  local venv
  venv="$(readlink -f "$RUN/opt/neurorack/venv")"
  log "installed runtime: $(du -sm "$venv" | cut -f1) MB in /opt/neurorack/$(basename "$venv") (the Pi's SD card)"
  log "  largest parts (MB): $(du -sm "$venv"/lib/python3*/site-packages/* | sort -rn | head -8 | awk '{ n = $2; sub(/.*\//, "", n); printf "%s %s, ", n, $1 }')"
  log "  torch in it: $(ls -d "$venv"/lib/python3*/site-packages/torch 2>/dev/null || echo none); nvidia: $(ls -d "$venv"/lib/python3*/site-packages/nvidia* 2>/dev/null || echo none)"
}
RENDER_ENV=()
torch_for_render() {
  # The runtime renders torch-free once the onnx backend is in; until then the render step gets
  # a CPU-only torch in its own folder (on PYTHONPATH), so the runtime measured above stays as it is.
  if as_musician /opt/neurorack/venv/bin/neurorack sounds export "big impact" /tmp/probe.json >/dev/null 2>&1 &&
     as_musician /opt/neurorack/venv/bin/neurorack render --descriptors /tmp/probe.json --out /tmp/probe.wav >/dev/null 2>&1; then
    echo "the runtime renders without torch"; return 0
  fi
  [ -d "$RUN/opt/check-torch/torch" ] ||   # kept from the run resumed (ARM64_RESUME=1)
    in_root /opt/neurorack/venv/bin/pip install -q --no-cache-dir --target /opt/check-torch "$CHECK_TORCH"
  ! ls -d "$RUN"/opt/check-torch/nvidia* 2>/dev/null || { echo "$CHECK_TORCH brought CUDA packages" >&2; return 1; }
  RENDER_ENV=(PYTHONPATH=/opt/check-torch)
  log "  render step: $CHECK_TORCH (CPU-only aarch64 wheel from PyPI, no nvidia packages) in /opt/check-torch, $(du -sm "$RUN/opt/check-torch" | cut -f1) MB, not part of the runtime"
}
as_musician() {
  in_root runuser -u "$PI_USER" -- env HOME="/home/$PI_USER" NEURORACK_CONFIG=/var/lib/neurorack/boards \
    NEURORACK_SOUNDS=/var/lib/neurorack/sounds XDG_CACHE_HOME=/var/lib/neurorack/cache "${RENDER_ENV[@]}" "$@"
}
render_impact() {
  as_musician /opt/neurorack/venv/bin/neurorack sounds export "big impact" /tmp/big-impact.json
  as_musician /opt/neurorack/venv/bin/neurorack render --descriptors /tmp/big-impact.json --out /tmp/big-impact.wav
}
record_patch() {
  as_musician /opt/neurorack/venv/bin/python -c "import json; from neurorack.demo import scripted_patch;
open('/tmp/patch.jsonl', 'w').write(''.join(json.dumps(e) + '\n' for e in scripted_patch()))"
  as_musician /opt/neurorack/venv/bin/neurorack run --board sim --events /tmp/patch.jsonl --record /tmp/patch.wav | tee "$CACHE/record.log"
}
start_to_playable() {
  # The unit's ExecStart, as systemd would run it, on the sim board (a chroot has no SPI, GPIO
  # or sound card) playing into a JACK dummy server: the time from exec to the first playable gate.
  # /proc is mounted for this step only: the module pins its processes to cores through it (the
  # mount hides the faked device tree meanwhile).
  in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends jackd2 >/dev/null
  mount -t proc proc "$RUN/proc"
  local status=0
  as_musician /opt/neurorack/venv/bin/python - <<'EOF' > "$CACHE/playable.log" || status=$?
import os, subprocess, sys, time
jack = subprocess.Popen(["jackd", "--no-realtime", "-d", "dummy", "-r", "48000", "-p", "128"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
time.sleep(3)
start = time.monotonic()
module = subprocess.Popen(["/opt/neurorack/venv/bin/neurorack", "run", "--board", "sim", "--device", "jack",
                           "--duration", "5"], stderr=subprocess.PIPE, text=True)
ready, lines = None, []
for line in module.stderr:
    lines.append(line.rstrip())
    if "ready: first gate playable" in line and ready is None:
        ready = time.monotonic() - start
        print("module:", line.strip())
module.wait(timeout=120)
jack.terminate(); jack.wait(timeout=10)
if not ready:
    print("\n".join(lines[-10:]))
print(f"start to first playable gate: {ready:.2f} s (emulated)" if ready else "never became playable")
sys.exit(0 if ready else 1)
EOF
  umount "$RUN/proc"
  cat "$CACHE/playable.log"
  return "$status"
}

make_demo_plan() {
  # What `make demo` would install on this arm64 machine (deploy/make-venv.sh's choice, then
  # pip's resolution, --dry-run): no torch from this index, no nvidia or triton packages.
  local plan extras
  plan="$(in_root sh -c "cd $PI_CHECKOUT && bash deploy/make-venv.sh --plan python3")"
  extras="${plan##*extras=}"
  in_root sh -c "python3 -m venv /tmp/demo-venv && cd $PI_CHECKOUT &&
    /tmp/demo-venv/bin/pip install -q --dry-run --ignore-installed --report /tmp/demo-plan.json '.[$extras]'"
  in_root /tmp/demo-venv/bin/python -c "
import json, sys
names = sorted(i['metadata']['name'].lower() for i in json.load(open('/tmp/demo-plan.json'))['install'])
cuda = [n for n in names if n == 'torch' or n.startswith(('nvidia', 'triton', 'cuda'))]
print('$plan:', len(names), 'packages; torch/CUDA among them:', cuda or 'none')
sys.exit(1 if cuda and '$plan'.startswith('torch=none') else 0)" | tee "$CACHE/demo-plan.log"
}

log "check-arm64: deploy/install.sh --board pi-mcp3208 on an emulated Raspberry Pi 4 (Debian Bookworm arm64, qemu-user) $(date -u +%FT%TZ)"
step "host tools (debootstrap, qemu-user-static)" host_tools
step "arm64 Bookworm root (debootstrap, reused if built)" make_base
if [ "${ARM64_RESUME:-0}" = 1 ]; then
  step "the last run's root, resumed (ARM64_RESUME=1)" reuse_root
else
  step "fresh copy of it, /dev bound" fresh_root
  step "fake Pi: device tree, boot partition, raspi-config" fake_pi
fi
if want install; then
  step "deploy/install.sh --board pi-mcp3208" install_runtime
  log "$(sed -n 's/^doing: /  did: /p' "$CACHE/step.log")"
fi
want again && step "deploy/install.sh again (must change nothing)" install_again
want verify && step "systemd-analyze verify neurorack.service" verify_unit
want size && runtime_size
want torch && step "torch for the render step, if the runtime needs it" torch_for_render
want render && step "render an impact (big impact, installed runtime)" render_impact
if want record; then
  step "offline --record of the demo patch" record_patch
  log "  $(cat "$CACHE/record.log")"
fi
if want plan; then
  step "make demo's venv on arm64 (plan, pip --dry-run)" make_demo_plan
  log "  $(tail -n 1 "$CACHE/demo-plan.log")"
fi
if want playable; then
  want torch || torch_for_render >/dev/null
  step "unit command to first playable gate (sim board, JACK dummy)" start_to_playable
  log "  $(tail -n 1 "$CACHE/playable.log")"
fi
log "raspi-config calls: $(tr '\n' ';' < "$RUN/var/log/raspi-config.calls")"
log "config.txt now: $(grep -v '^#' "$RUN/boot/firmware/config.txt" | tr '\n' ' ')"
log "report: $REPORT"
