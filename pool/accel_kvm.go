package pool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The KVM ioctls the probe uses (linux/kvm.h; _IO, _IOR and _IOW of type
// 0xAE, with the sizes of struct kvm_userspace_memory_region (32), kvm_regs
// (144) and kvm_sregs (312) on x86-64).
const (
	kvmGetAPIVersion       = 0xAE00
	kvmCreateVM            = 0xAE01
	kvmGetVCPUMmapSize     = 0xAE04
	kvmCreateVCPU          = 0xAE41
	kvmSetUserMemoryRegion = 0x4020AE46
	kvmRun                 = 0xAE80
	kvmGetRegs             = 0x8090AE81
	kvmSetRegs             = 0x4090AE82
	kvmGetSregs            = 0x8138AE83
	kvmSetSregs            = 0x4138AE84

	kvmAPIVersion = 12 // the only stable KVM API
	kvmExitHLT    = 5
)

// kvmRegs is struct kvm_regs on x86-64.
type kvmRegs struct {
	RAX, RBX, RCX, RDX, RSI, RDI, RSP, RBP uint64
	R8, R9, R10, R11, R12, R13, R14, R15   uint64
	RIP, RFLAGS                            uint64
}

// kvmSregsSize is the size of struct kvm_sregs; its first member is the
// code segment, a struct kvm_segment: base (u64), limit (u32), selector
// (u16), ...
const kvmSregsSize = 312

// kvmHltBound is how long the probe's vCPU may take to reach its hlt.
const kvmHltBound = 2 * time.Second

// kvmProbeCode is the probe guest, real-mode code at guest address 0x1000:
// mov al, 2; add al, 3; hlt. The probe checks that rax is 5 after the hlt:
// the instructions ran, not only an exit.
var kvmProbeCode = []byte{0xb0, 0x02, 0x04, 0x03, 0xf4}

func kvmIoctl(fd int, req uintptr, arg uintptr) (int, error) {
	r, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, arg)
	if e != 0 {
		return int(r), e
	}
	return int(r), nil
}

// ProbeKVMDevice tests KVM itself, with no QEMU: it opens /dev/kvm, checks
// the API version, makes a VM with one page of memory and one vCPU, and
// runs a few real-mode instructions to a hlt, which must exit KVM_RUN with
// KVM_EXIT_HLT within 2 s (a vCPU that never exits is interrupted by a
// signal to its thread, and the probe fails).
func ProbeKVMDevice(ctx context.Context) error {
	return probeKVMDevice(ctx, kvmProbeCode, kvmHltBound)
}

// probeKVMDevice is ProbeKVMDevice running code, which must leave 5 in al,
// with bound for reaching its hlt.
func probeKVMDevice(ctx context.Context, code []byte, bound time.Duration) error {
	kvm, err := unix.Open("/dev/kvm", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /dev/kvm: %w", err)
	}
	defer unix.Close(kvm)
	v, err := kvmIoctl(kvm, kvmGetAPIVersion, 0)
	if err != nil {
		return fmt.Errorf("KVM_GET_API_VERSION: %w", err)
	}
	if v != kvmAPIVersion {
		return fmt.Errorf("KVM API version %d, want %d", v, kvmAPIVersion)
	}
	vm, err := kvmIoctl(kvm, kvmCreateVM, 0)
	if err != nil {
		return fmt.Errorf("KVM_CREATE_VM: %w", err)
	}
	defer unix.Close(vm)
	mem, err := unix.Mmap(-1, 0, 0x1000, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_ANONYMOUS)
	if err != nil {
		return fmt.Errorf("guest memory: %w", err)
	}
	defer unix.Munmap(mem)
	copy(mem, code)
	region := struct {
		slot, flags                    uint32
		guestPhys, size, userspaceAddr uint64
	}{guestPhys: 0x1000, size: 0x1000, userspaceAddr: uint64(uintptr(unsafe.Pointer(&mem[0])))}
	if _, err := kvmIoctl(vm, kvmSetUserMemoryRegion, uintptr(unsafe.Pointer(&region))); err != nil {
		return fmt.Errorf("KVM_SET_USER_MEMORY_REGION: %w", err)
	}
	vcpu, err := kvmIoctl(vm, kvmCreateVCPU, 0)
	if err != nil {
		return fmt.Errorf("KVM_CREATE_VCPU: %w", err)
	}
	defer unix.Close(vcpu)
	runSize, err := kvmIoctl(kvm, kvmGetVCPUMmapSize, 0)
	if err != nil {
		return fmt.Errorf("KVM_GET_VCPU_MMAP_SIZE: %w", err)
	}
	run, err := unix.Mmap(vcpu, 0, runSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("map the vCPU's run area: %w", err)
	}
	defer unix.Munmap(run)
	var sregs [kvmSregsSize]byte
	if _, err := kvmIoctl(vcpu, kvmGetSregs, uintptr(unsafe.Pointer(&sregs[0]))); err != nil {
		return fmt.Errorf("KVM_GET_SREGS: %w", err)
	}
	clear(sregs[0:8])   // cs.base
	clear(sregs[12:14]) // cs.selector
	if _, err := kvmIoctl(vcpu, kvmSetSregs, uintptr(unsafe.Pointer(&sregs[0]))); err != nil {
		return fmt.Errorf("KVM_SET_SREGS: %w", err)
	}
	regs := kvmRegs{RIP: 0x1000, RFLAGS: 2}
	if _, err := kvmIoctl(vcpu, kvmSetRegs, uintptr(unsafe.Pointer(&regs))); err != nil {
		return fmt.Errorf("KVM_SET_REGS: %w", err)
	}
	if err := kvmRunBounded(ctx, vcpu, run, bound); err != nil {
		return err
	}
	if _, err := kvmIoctl(vcpu, kvmGetRegs, uintptr(unsafe.Pointer(&regs))); err != nil {
		return fmt.Errorf("KVM_GET_REGS: %w", err)
	}
	if regs.RAX&0xff != 5 {
		return fmt.Errorf("the guest reached hlt with al=%d, want 5: its instructions did not run as written", regs.RAX&0xff)
	}
	return nil
}

// kvmRunBounded runs the vCPU on a thread of its own until it exits on
// its hlt, or fails once bound (or ctx) has passed: it then sends
// the thread SIGURG (which the Go runtime ignores), KVM_RUN returns EINTR,
// and the thread gives up.
func kvmRunBounded(ctx context.Context, vcpu int, run []byte, bound time.Duration) error {
	var expired atomic.Bool
	tid := make(chan int, 1)
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		tid <- unix.Gettid()
		for {
			_, err := kvmIoctl(vcpu, kvmRun, 0)
			if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
				// The runtime's preemption signal, or our own.
				if expired.Load() {
					done <- fmt.Errorf("KVM: guest did not reach hlt in %v", bound)
					return
				}
				continue
			}
			if err != nil {
				done <- fmt.Errorf("KVM_RUN: %w", err)
				return
			}
			reason := *(*uint32)(unsafe.Pointer(&run[8])) // kvm_run.exit_reason
			if reason != kvmExitHLT {
				done <- fmt.Errorf("KVM: guest exited with reason %d before its hlt", reason)
				return
			}
			done <- nil
			return
		}
	}()
	t := <-tid
	timer := time.NewTimer(bound)
	defer timer.Stop()
	select {
	case err := <-done:
		return err
	case <-timer.C:
	case <-ctx.Done():
	}
	expired.Store(true)
	for {
		unix.Tgkill(unix.Getpid(), t, unix.SIGURG)
		select {
		case err := <-done:
			if err == nil {
				return nil
			}
			if ctx.Err() != nil {
				return fmt.Errorf("KVM probe: %w", ctx.Err())
			}
			return err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// kvmQEMUBound is how long the QEMU stage of ProbeKVM may take.
const kvmQEMUBound = 5 * time.Second

// probeBIOSCode is the probe's firmware, at the reset vector (the last 16
// bytes of the image): mov al, 0x2a; out 0xf4, al (QEMU's isa-debug-exit,
// which ends QEMU with exit code 0x2a<<1|1 = 85); then hlt forever.
var probeBIOSCode = []byte{0xb0, 0x2a, 0xe6, 0xf4, 0xf4, 0xeb, 0xfd}

// probeBIOSExit is QEMU's exit code once the probe firmware ran.
const probeBIOSExit = 0x2a<<1 | 1

// ProbeKVMQEMU tests KVM as the VM lab uses it: QEMU with -accel kvm and
// -cpu host (what a guest gets under KVM) boots a 64 KiB firmware whose
// first instructions make QEMU exit with a known code. That catches what
// the bare vCPU does not: a host CPU model QEMU cannot set up in KVM
// (seen: "failed to set MSR 0x10a") or a guest that starts and never runs.
func ProbeKVMQEMU(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "lnst-kvmprobe-")
	if err != nil {
		return fmt.Errorf("KVM probe: %w", err)
	}
	defer os.RemoveAll(dir)
	bios := make([]byte, 64<<10)
	copy(bios[len(bios)-16:], probeBIOSCode)
	path := filepath.Join(dir, "bios.bin")
	if err := os.WriteFile(path, bios, 0o600); err != nil {
		return fmt.Errorf("KVM probe: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, kvmQEMUBound)
	defer cancel()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", "-accel", "kvm", "-cpu", "host", "-m", "16", "-smp", "1",
		"-nodefaults", "-no-user-config", "-display", "none", "-bios", path,
		"-device", "isa-debug-exit,iobase=0xf4,iosize=0x04")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = time.Second
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("KVM: QEMU's guest did not run its first instructions in %v (-accel kvm -cpu host)", kvmQEMUBound)
	case errors.As(err, &ee) && ee.ExitCode() == probeBIOSExit:
		return nil
	case err == nil:
		return errors.New("KVM: QEMU exited before its guest ran (-accel kvm -cpu host)")
	}
	// QEMU's message, on one line for the log ("qemu-system-x86_64:
	// error: failed to set MSR 0x10a to 0x69; ...").
	msg := strings.Join(strings.Fields(strings.ReplaceAll(strings.TrimSpace(out.String()), "\n", " ; ")), " ")
	if len(msg) > 300 {
		msg = msg[:300] + "..."
	}
	return fmt.Errorf("KVM: QEMU -accel kvm -cpu host failed (%v): %s", err, msg)
}

// ProbeKVM is the VM lab's KVM probe: ProbeKVMDevice, then ProbeKVMQEMU.
// It is bounded: 2 s for the vCPU, 5 s for QEMU.
func ProbeKVM(ctx context.Context) error {
	if err := ProbeKVMDevice(ctx); err != nil {
		return err
	}
	return ProbeKVMQEMU(ctx)
}
