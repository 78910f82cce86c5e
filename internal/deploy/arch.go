package deploy

import (
	"debug/elf"
	"fmt"
	"strings"

	"github.com/lnst-go/lnst/internal/archname"
)

// unameGOARCH is the GOARCH that runs on a machine whose `uname -m` is
// machine, or an error naming it when Go has none.
func unameGOARCH(machine string) (string, error) {
	if a, ok := archname.GOARCH(machine); ok {
		return a, nil
	}
	return "", fmt.Errorf("machine type %q (uname -m): no Go architecture known for it", machine)
}

// binaryGOARCH is the GOARCH of the Linux ELF executable at path.
func binaryGOARCH(path string) (string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return "", fmt.Errorf("agent binary %s: not a Linux executable: %w", path, err)
	}
	defer f.Close()
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return "", fmt.Errorf("agent binary %s: an ELF %s, not an executable", path, f.Type)
	}
	le := f.Data == elf.ELFDATA2LSB
	switch {
	case f.Machine == elf.EM_X86_64:
		return "amd64", nil
	case f.Machine == elf.EM_386:
		return "386", nil
	case f.Machine == elf.EM_AARCH64:
		return "arm64", nil
	case f.Machine == elf.EM_ARM:
		return "arm", nil
	case f.Machine == elf.EM_PPC64 && le:
		return "ppc64le", nil
	case f.Machine == elf.EM_PPC64:
		return "ppc64", nil
	case f.Machine == elf.EM_S390:
		return "s390x", nil
	case f.Machine == elf.EM_RISCV && f.Class == elf.ELFCLASS64:
		return "riscv64", nil
	case f.Machine == elf.EM_LOONGARCH:
		return "loong64", nil
	}
	return "", fmt.Errorf("agent binary %s: machine %s: no Go architecture known for it", path, strings.TrimPrefix(f.Machine.String(), "EM_"))
}

// checkArch checks that the agent binary at path runs on a host whose
// `uname -m` is machine.
func checkArch(host, machine, path string) error {
	want, err := unameGOARCH(machine)
	if err != nil {
		return fmt.Errorf("host %s: %w", host, err)
	}
	got, err := binaryGOARCH(path)
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("host %s is %s (GOARCH %s) but agent binary %s is for %s: build one for the host with "+
			"`CGO_ENABLED=0 GOOS=linux GOARCH=%s go build -o lnst-agent.%s ./cmd/lnst-agent` and give it with --agent-binary",
			host, machine, want, path, got, want, want)
	}
	return nil
}

// dynamicallyLinked reports whether the executable at path needs a
// dynamic loader (a Go binary built with cgo): then the host needs a C
// library compatible with the one it was built against.
func dynamicallyLinked(path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return true
		}
	}
	return false
}
