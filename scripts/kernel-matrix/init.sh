#!/bin/sh
# PID 1 of the kernel matrix's initramfs (busybox). Loads the modules the guest needs, mounts this
# machine's root file system (shared read-only over 9p) under a tmpfs overlay, mounts the writable
# results share, and hands over to the job's guest script in the new root.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

# The guest has no udev and no module autoloading: /modules/order lists the modules in dependency order.
while read -r m; do
  insmod "/modules/$m.ko" || echo "matrix-init: insmod $m failed"
done < /modules/order

fail() {
  echo "matrix-init: $*"
  echo o > /proc/sysrq-trigger
  sleep 60
}

# msize: the 9p default (8 KiB on 6.1) makes every file read many round trips.
opts=trans=virtio,version=9p2000.L,msize=262144
mount -t 9p -o "$opts,ro,cache=loose" hostroot /lower || fail "cannot mount the host's root over 9p"
mount -t tmpfs -o mode=0755 overlay-rw /rw
mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot \
  || fail "cannot mount the overlay"
mkdir -p /newroot/mnt/matrix-results
mount -t 9p -o "$opts" results /newroot/mnt/matrix-results || fail "cannot mount the results share"
[ -f /newroot/mnt/matrix-results/guest.sh ] || fail "no guest.sh in the results share"

umount /proc /sys /dev
exec switch_root /newroot /bin/bash /mnt/matrix-results/guest.sh
