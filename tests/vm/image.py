# SPDX-License-Identifier: LGPL-2.1-or-later
"""Base VM image for the VM suite: build once, cache outside the tree.

The image is a Debian 12 (bookworm) minbase root file system made with
debootstrap, plus the Debian cloud kernel's modules, packed into an ext4
image with `mkfs.ext4 -d` (no loop device, no root mount). Next to it: the
cloud kernel (vmlinuz) and a busybox initramfs that loads the virtio and
ext4 modules, mounts /dev/vda, applies an optional payload (a tar archive
on /dev/vdb, see vmlab.py) and switch_roots to systemd.

Cache: $MESHD_VM_CACHE (default /var/cache/meshd-vm)/<key>/ where key is a
hash of the recipe (package list, kernel package, the files written into
the image, RECIPE_VERSION). A build happens in a temporary directory next
to it and is renamed into place only when complete, under a lock.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RECIPE_VERSION = "8"
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
IMAGE_SIZE = "2G"

PACKAGES = [
    # boot, services, tools the tests use
    "systemd", "systemd-sysv", "udev", "kmod", "dbus", "iproute2",
    "iputils-ping", "procps", "wireguard-tools",
    # checking the node certificates meshd keeps (test_certificate_renewal…)
    "openssl",
    # `systemd-analyze verify` checks Documentation=man:… with man(1)
    "man-db",
    # NFS client (mount.nfs4) and kernel nfsd's user space
    "nfs-common", "nfs-kernel-server",
    # run-time libraries of meshd, meshd-control, meshctl and helpers
    "libsystemd0", "libsodium23", "libnl-3-200", "libnl-genl-3-200",
    "libnl-route-3-200", "libcurl3-gnutls", "libcjson1", "libinih1",
    "libmount1", "libmicrohttpd12", "libgnutls30", "libsqlite3-0",
    "libnftables1",                # dlopen()ed: the hub firewall, the node's table inet meshd
    "libpsl5", "publicsuffix",     # meshd: a mesh domain is no public suffix
    "libldns3",                    # mesh DNS (meshd and meshd-control)
    "libqrencode4", "libpng16-16", # meshd-control devices add --qr
    "libpq5",                      # meshd-control --database=postgresql://… (issue 17)
    # meshd registers its mesh DNS with systemd-resolved (issue 14): the
    # resolver itself, drill (a DNS client that bypasses NSS) and
    # dnsmasq (the "outside" DNS server the tests serve a zone with;
    # dnsmasq-base has no unit, nothing starts it by itself)
    "systemd-resolved", "ldnsutils", "dnsmasq-base",
    # nft(8): test_routes_vm compares `nft list table` text (issue 16)
    "nftables",
]
# systemd automount uses the kernel's autofs4 module: no autofs package.

# Modules the initramfs loads, in this order (dependencies are resolved
# from modules.dep; built-ins are skipped).
INITRD_MODULES = ["virtio_pci", "virtio_blk", "ext4"]

INIT_SCRIPT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /modules.order); do insmod "/mods/$m" 2>/dev/null; done
i=0
while [ ! -b /dev/vda ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
mkdir -p /newroot
if ! mount -t ext4 -o rw /dev/vda /newroot; then
        echo "MESHD-VM: cannot mount /dev/vda"
        poweroff -f
fi
if [ -b /dev/vdb ]; then
        echo "MESHD-VM: applying payload"
        tar -xf /dev/vdb -C /newroot || echo "MESHD-VM: payload extraction failed"
        if [ -f /newroot/.meshd-vm-setup ]; then
                mount --bind /proc /newroot/proc
                mount --bind /sys /newroot/sys
                mount --bind /dev /newroot/dev
                chroot /newroot /bin/bash /.meshd-vm-setup > /newroot/var/log/meshd-vm-setup.log 2>&1
                echo "MESHD-VM: setup exit status $?"
                rm -f /newroot/.meshd-vm-setup
                umount /newroot/dev /newroot/sys /newroot/proc
        fi
fi
umount /sys /proc
mount --move /dev /newroot/dev
exec switch_root /newroot /sbin/init
"""

# The test agent: runs commands the host sends over a virtio-serial port.
# Request line:  ID TIMEOUT BASE64(command)
# Reply line:    ID RC BASE64(stdout) BASE64(stderr)
AGENT_SCRIPT = r"""#!/bin/bash
# meshd VM test agent (tests/vm): executes the host's commands.
find_port() {
        local n
        for n in /sys/class/virtio-ports/*/name; do
                [ "$(cat "$n" 2>/dev/null)" = org.meshd.agent ] || continue
                n=${n%/name}
                echo "/dev/${n##*/}"
                return 0
        done
        return 1
}
while true; do
        port=$(find_port) && [ -c "$port" ] && break
        sleep 0.2
done
work=$(mktemp -d /run/meshd-vm-agent.XXXXXX)
while true; do
        exec 3<>"$port" || { sleep 0.5; continue; }
        while IFS=' ' read -r id limit cmd <&3; do
                [ -n "$id" ] || continue
                printf '%s' "$cmd" | base64 -d > "$work/cmd" 2>/dev/null
                timeout -k 5 "$limit" bash "$work/cmd" > "$work/out" 2> "$work/err" < /dev/null
                rc=$?
                printf '%s %s %s %s\n' "$id" "$rc" "$(base64 -w0 "$work/out")" "$(base64 -w0 "$work/err")" >&3
        done
        exec 3>&-
        sleep 0.2
done
"""

AGENT_UNIT = """[Unit]
Description=meshd VM test agent
DefaultDependencies=no
After=systemd-udevd.service

[Service]
ExecStartPre=-/sbin/modprobe virtio_console
ExecStart=/usr/local/sbin/meshd-vm-agent
Restart=always
RestartSec=1

[Install]
WantedBy=sysinit.target
"""

FSTAB = "/dev/vda / ext4 rw,errors=remount-ro 0 0\n"

# Files written into the root file system (path → (mode, text)).
ROOT_FILES = {
    "etc/fstab": (0o644, FSTAB),
    "etc/hostname": (0o644, "vm\n"),
    "etc/hosts": (0o644, "127.0.0.1 localhost\n::1 localhost\n"),
    "usr/local/sbin/meshd-vm-agent": (0o755, AGENT_SCRIPT),
    "etc/systemd/system/meshd-vm-agent.service": (0o644, AGENT_UNIT),
    "etc/exports": (0o644, ""),
    # fast, quiet boots; the journal stays in memory (one boot at a time)
    "etc/systemd/journald.conf.d/meshd-vm.conf": (0o644, "[Journal]\nStorage=volatile\nRateLimitBurst=0\n"),
    "etc/systemd/system.conf.d/meshd-vm.conf": (0o644, "[Manager]\nDefaultTimeoutStopSec=15s\n"),
}

# Run inside the root (chroot) at build time.
CONFIGURE = r"""set -e
systemctl enable meshd-vm-agent.service systemd-networkd.service
systemctl disable nfs-server.service || true
systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer \
        e2scrub_reap.service fstrim.timer serial-getty@ttyS0.service \
        getty@tty1.service
passwd -d root
rm -f /etc/machine-id /var/lib/dbus/machine-id
: > /etc/machine-id
"""


def cache_root() -> Path:
    return Path(os.environ.get("MESHD_VM_CACHE", "/var/cache/meshd-vm"))


def log(msg: str):
    print(f"[vm-image] {msg}", file=sys.stderr, flush=True)


def run(argv, **kw):
    kw.setdefault("check", True)
    return subprocess.run([str(a) for a in argv], **kw)


def kernel_package() -> str:
    """The current cloud kernel package, e.g. linux-image-6.1.0-56-cloud-amd64
    (the dependency of the metapackage in the host's apt lists)."""
    override = os.environ.get("MESHD_VM_KERNEL_PACKAGE")
    if override:
        return override
    cp = run(["apt-cache", "depends", "linux-image-cloud-amd64"], capture_output=True, text=True)
    for line in cp.stdout.splitlines():
        line = line.strip()
        if line.startswith("Depends:") and "linux-image-" in line:
            return line.split()[1]
    raise RuntimeError("cannot find the cloud kernel package (apt-cache depends linux-image-cloud-amd64):\n"
                       + cp.stdout + cp.stderr)


def recipe_key(kpkg: str) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({
        "version": RECIPE_VERSION, "suite": SUITE, "packages": PACKAGES,
        "kernel": kpkg, "initrd_modules": INITRD_MODULES, "init": INIT_SCRIPT,
        "files": ROOT_FILES, "configure": CONFIGURE, "size": IMAGE_SIZE,
    }, sort_keys=True).encode())
    return h.hexdigest()[:16]


class Image:
    """A built image in the cache: base.img, vmlinuz, initrd.gz."""

    def __init__(self, path: Path):
        self.path = path
        self.base = path / "base.img"
        self.kernel = path / "vmlinuz"
        self.initrd = path / "initrd.gz"
        info = json.loads((path / "info.json").read_text())
        self.kernel_version = info["kernel_version"]
        self.info = info


def ensure_image(*, rebuild: bool = False) -> Image:
    """Return the cached image for the current recipe, building it if needed."""
    for tool in ("debootstrap", "mkfs.ext4", "busybox", "apt-get", "dpkg-deb"):
        if not shutil.which(tool):
            raise RuntimeError(f"{tool} not found: run tools/setup (as root)")
    kpkg = kernel_package()
    key = recipe_key(kpkg)
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    final = root / key
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if final.exists() and not rebuild and (final / "info.json").exists():
            return Image(final)
        if final.exists():
            shutil.rmtree(final)
        work = Path(tempfile.mkdtemp(prefix=f".build-{key}-", dir=root))
        try:
            _build(work, kpkg, key)
            os.rename(work, final)
        finally:
            if work.exists():
                shutil.rmtree(work, ignore_errors=True)
        _prune(root, keep=final)
        return Image(final)


def _prune(root: Path, keep: Path):
    """Drop images of older recipes (each is ~1 GB sparse)."""
    for p in root.iterdir():
        if p != keep and p.is_dir() and (p / "info.json").exists():
            shutil.rmtree(p, ignore_errors=True)


def _build(work: Path, kpkg: str, key: str):
    t0 = time.monotonic()
    rootfs = work / "rootfs"
    log(f"debootstrap {SUITE} ({len(PACKAGES)} extra packages) into {rootfs}")
    run(["debootstrap", "--variant=minbase", "--include=" + ",".join(PACKAGES),
         SUITE, rootfs, MIRROR], stdout=subprocess.DEVNULL)
    t1 = time.monotonic()

    kver = kpkg.removeprefix("linux-image-")
    debs = cache_root() / "debs"
    debs.mkdir(exist_ok=True)
    found = sorted(debs.glob(f"{kpkg}_*.deb"))
    if not found:
        log(f"apt-get download {kpkg}")
        run(["apt-get", "download", "-q", kpkg], cwd=debs, stdout=subprocess.DEVNULL)
        found = sorted(debs.glob(f"{kpkg}_*.deb"))
    kdir = work / "kernel"
    run(["dpkg-deb", "-x", found[-1], kdir])
    mods_src = next(p for p in (kdir / "lib/modules" / kver, kdir / "usr/lib/modules" / kver) if p.exists())
    mods_dst = rootfs / "usr/lib/modules" / kver
    mods_dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(mods_src, mods_dst, symlinks=True)
    shutil.copy(next((kdir / "boot").glob("vmlinuz-*")), work / "vmlinuz")
    run(["chroot", rootfs, "depmod", "-a", kver])

    for rel, (mode, text) in ROOT_FILES.items():
        p = rootfs / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        p.chmod(mode)
    run(["chroot", rootfs, "/bin/sh", "-c", CONFIGURE], stdout=subprocess.DEVNULL)
    # apt lists and caches are dead weight in the image
    for d in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for p in (rootfs / d).glob("*"):
            if p.is_file():
                p.unlink()

    _build_initrd(rootfs / "usr/lib/modules" / kver, work / "initrd.gz")
    t2 = time.monotonic()
    log("mkfs.ext4 -d")
    run(["mkfs.ext4", "-q", "-F", "-L", "meshd-vm", "-d", rootfs, work / "base.img", IMAGE_SIZE])
    t3 = time.monotonic()
    shutil.rmtree(rootfs)
    shutil.rmtree(kdir)
    info = {"key": key, "kernel_package": kpkg, "kernel_version": kver,
            "packages": PACKAGES, "built": time.strftime("%Y-%m-%d %H:%M:%S"),
            "seconds": {"debootstrap": round(t1 - t0, 1), "kernel+config": round(t2 - t1, 1),
                        "mkfs": round(t3 - t2, 1)}}
    (work / "info.json").write_text(json.dumps(info, indent=1) + "\n")
    log(f"image built in {t3 - t0:.0f} s: {info['seconds']}")


def _module_deps(moddir: Path, names) -> list[str]:
    """Relative paths of the .ko files for names and their dependencies, in
    load order (dependencies first); built-in modules are skipped."""
    deps = {}
    for line in (moddir / "modules.dep").read_text().splitlines():
        target, _, rest = line.partition(":")
        deps[target] = rest.split()
    by_name = {Path(t).name.split(".ko")[0].replace("-", "_"): t for t in deps}
    order: list[str] = []

    def visit(t):
        if t in order:
            return
        # modules.dep lists all (transitive) dependencies; load them
        # deepest first
        for d in reversed(deps.get(t, [])):
            visit(d)
        order.append(t)

    for n in names:
        t = by_name.get(n.replace("-", "_"))
        if t:
            visit(t)
    return order


def _build_initrd(moddir: Path, out: Path):
    busybox = shutil.which("busybox")
    files = {}  # path in archive -> (mode, bytes or None for dir)
    for d in ("bin", "dev", "proc", "sys", "tmp", "newroot", "mods"):
        files[d] = (stat.S_IFDIR | 0o755, None)
    files["bin/busybox"] = (stat.S_IFREG | 0o755, Path(busybox).read_bytes())
    files["init"] = (stat.S_IFREG | 0o755, INIT_SCRIPT.encode())
    order = []
    for rel in _module_deps(moddir, INITRD_MODULES):
        name = Path(rel).name
        data = (moddir / rel).read_bytes()
        if name.endswith(".xz"):
            import lzma
            data, name = lzma.decompress(data), name[:-3]
        files["mods/" + name] = (stat.S_IFREG | 0o644, data)
        order.append(name)
    files["modules.order"] = (stat.S_IFREG | 0o644, ("\n".join(order) + "\n").encode())
    buf = io.BytesIO()
    ino = 1
    for name, (mode, data) in list(files.items()) + [("TRAILER!!!", (0, b""))]:
        data = data or b""
        nb = name.encode() + b"\0"
        hdr = "070701" + "".join(f"{v:08X}" for v in (
            ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(nb), 0))
        buf.write(hdr.encode() + nb)
        buf.write(b"\0" * (-(110 + len(nb)) % 4))
        buf.write(data)
        buf.write(b"\0" * (-len(data) % 4))
        ino += 1
    out.write_bytes(gzip.compress(buf.getvalue(), 6))


def main(argv):
    import argparse
    ap = argparse.ArgumentParser(description="Build (or find) the cached base image of the VM suite.")
    ap.add_argument("--rebuild", action="store_true", help="build even when a cached image exists")
    ap.add_argument("--print-key", action="store_true", help="print the recipe key and exit")
    a = ap.parse_args(argv)
    if a.print_key:
        print(recipe_key(kernel_package()))
        return 0
    t = time.monotonic()
    img = ensure_image(rebuild=a.rebuild)
    print(f"{img.path} (kernel {img.kernel_version}, {time.monotonic() - t:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
