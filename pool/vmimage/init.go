package vmimage

// initScript is /init, run by busybox sh as PID 1 (its applets win over
// PATH here, which is fine for init; /bin/sh for everything else is dash):
//
//  1. mounts proc, sysfs, devtmpfs, devpts, tmpfs on /tmp and /run; sets
//     the hostname from the kernel parameter lnst.hostname=;
//  2. makes /sbin/modprobe the kernel's module loader, loads the virtio
//     drivers (virtio_blk for the VM lab's state disk, which the agent
//     mounts) and brings lo up;
//  3. prints "lnst-vm: init done <uptime>" on the console;
//  4. runs /lnst/run, if executable, with its output on the console,
//     reaping re-parented orphans while it runs, then prints
//     "lnst-vm: agent exited <status>";
//
// and powers off in all cases. A reboot the agent asks for (Reboot, or a
// kexec into a kernel under test) is a reboot(2) call of its own: it does
// not come back here.
const initScript = `#!/bin/busybox sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm /tmp /run
mount -t devpts devpts /dev/pts
# What udev makes on a normal system: recipes read /dev/stdin.
ln -sf /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /dev/shm
exec </dev/console >/dev/console 2>&1
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	lnst.hostname=*) hostname "${arg#lnst.hostname=}" ;;
	esac
done
echo /sbin/modprobe >/proc/sys/kernel/modprobe
modprobe -a virtio_pci virtio_net virtio_console virtio_blk virtio_balloon || echo "lnst-vm: modprobe virtio failed"
ip link set lo up
read up idle </proc/uptime
echo "lnst-vm: init done $up"
if [ -x /lnst/run ]; then
	cd /
	/lnst/run </dev/null >/dev/console 2>&1 &
	pid=$!
	# wait blocks in waitpid(-1), so it also reaps orphans; a signal can
	# end it early, hence the loop.
	while :; do
		wait $pid
		status=$?
		kill -0 $pid 2>/dev/null || break
	done
	echo "lnst-vm: agent exited $status"
fi
poweroff -f
`
