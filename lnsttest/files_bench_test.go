package lnsttest

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/lnst-go/lnst/internal/benchratio"
	"github.com/lnst-go/lnst/pool"
)

// The file benchmarks put a file, and a tree of small files, on a host of
// the local lab through its agent (the code path of Host.PutFile), and
// copy the same with cp and tar run as jobs on the same host, in the same
// run, alternating the two. Lab hosts share this machine's filesystem, so
// both sides read and write the same disk. Each put is taken back between
// iterations, outside the timing.

// benchLabHost leases a one-host instance of the namespace lab for b, as
// Require does for a recipe, and returns the host.
func benchLabHost(b *testing.B) *Host {
	b.Helper()
	s := current()
	if s == nil || s.pool != nil {
		b.Skip("requires the local lab: run under lnsttest.Main without -lnst.pool")
	}
	lab, err := s.labNow()
	if err != nil {
		b.Fatalf("start the lab: %v", err)
	}
	ctx := context.Background()
	in, err := lab.Acquire(ctx, pool.Topology{Hosts: []pool.TopoHost{{Name: "h1"}}})
	if err != nil {
		b.Fatalf("lab host: %v", err)
	}
	if in.Fresh {
		if err := s.snapInstance(lab, in); err != nil {
			lab.Release(in)
			b.Fatalf("lab host: %v", err)
		}
	}
	b.Cleanup(func() { lab.Release(in) })
	return &Host{s: s, client: lab.Client(), name: "h1", id: in.Hosts["h1"], ifaces: map[string]string{}}
}

// benchPut puts local at remote on h the way PutFile does and returns how
// long the put took; what it put is taken back before it returns.
func benchPut(b *testing.B, h *Host, local, remote string) time.Duration {
	b.Helper()
	return benchPutHow(b, h, local, remote, h.sharesFS())
}

// benchPutHow is benchPut, shared or streamed as a VM guest or a pool
// machine is put to.
func benchPutHow(b *testing.B, h *Host, local, remote string, shared bool) time.Duration {
	b.Helper()
	st := h.s.state(b)
	st.use(h.client)
	start := time.Now()
	r, err := h.put(st.group, local, remote, shared)
	took := time.Since(start)
	if err != nil {
		b.Fatalf("put %s at %s: %v", local, remote, err)
	}
	for _, err := range st.restoreErrs(context.Background(), h.client, r.Seq) {
		b.Fatalf("take back the put at %s: %v", remote, err)
	}
	return took
}

// benchJob runs argv on h as a job and returns how long it took, from
// the request to the job's end.
func benchJob(b *testing.B, h *Host, argv ...string) time.Duration {
	b.Helper()
	start := time.Now()
	h.RunArgv(b, argv, Quiet())
	return time.Since(start)
}

// benchRatio reports the median time of each side's rounds and prints
// the median of the per-round ratios ours[i]/theirs[i], with their spread:
//
//	RATIO <name> <ours/theirs> (min <a> max <b>, n=<rounds>)
//
// Medians, not means: on a machine shared with other work one round held
// up by a neighbour (writeback, a scheduler stall) would otherwise decide
// the ratio.
func benchRatio(b *testing.B, name, ours, theirs string, o, th []time.Duration) {
	if len(o) == 0 || len(th) == 0 {
		return
	}
	mo, _, _ := benchratio.Durations(o)
	mt, _, _ := benchratio.Durations(th)
	b.ReportMetric(mo.Seconds(), ours+"-s/op")
	b.ReportMetric(mt.Seconds(), theirs+"-s/op")
	benchratio.Print(name, benchratio.Ratios(o, th))
}

// benchRounds is how many times each side runs per benchmark iteration,
// alternating (ABBA), so that neither always runs on a warmer cache and a
// one-iteration run still measures more than once.
const benchRounds = 6

// BenchmarkPutFile256MiB puts a 256 MiB file on a lab host and copies it
// there with cp, and streams it, rounds interleaved (ABBA), and prints
//
//	RATIO putfile/cp <x> (min, max, n)
//	RATIO putfile_stream/cp <x> (min, max, n)
//
// putfile/cp: PutFile of the file (the code path of Host.PutFile) against
// a cp job on the host, both timed from the request to the end. The lab
// host shares this machine's filesystem, so PutFile sends the file's path
// and the agent copies it in the kernel, as cp does.
//
// putfile_stream/cp: PutFile streaming the data over gRPC, as a put to a
// VM guest or a pool machine does, against the floor of any stream: the
// same bytes read from the file here and written, 1 MiB at a time,
// through a plain unix stream socket (the kind the lab agent is reached
// on) to a dd process that writes them to the same path. The name keeps
// "cp" for make bench's history; the floor is the plain stream.
func BenchmarkPutFile256MiB(b *testing.B) {
	h := benchLabHost(b)
	dir := b.TempDir()
	src := filepath.Join(dir, "big")
	writeBenchFile(b, src, 256<<20)
	dst := filepath.Join(dir, "copy")
	cpOnce := func() time.Duration {
		took := benchJob(b, h, "cp", src, dst)
		if err := os.Remove(dst); err != nil {
			b.Fatal(err)
		}
		return took
	}
	plainOnce := func() time.Duration {
		took := benchPlainStream(b, src, dst)
		if err := os.Remove(dst); err != nil {
			b.Fatal(err)
		}
		return took
	}
	streamOnce := func() time.Duration { return benchPutHow(b, h, src, dst, false) }
	// Warm up: the first copy of each side pays for faulting in what
	// later ones find in the page cache.
	benchPut(b, h, src, dst)
	cpOnce()
	streamOnce()
	plainOnce()
	var put, cp, stream, plain []time.Duration
	for b.Loop() {
		for i := range benchRounds {
			if i%2 == 0 {
				put = append(put, benchPut(b, h, src, dst))
				cp = append(cp, cpOnce())
				stream = append(stream, streamOnce())
				plain = append(plain, plainOnce())
			} else {
				plain = append(plain, plainOnce())
				stream = append(stream, streamOnce())
				cp = append(cp, cpOnce())
				put = append(put, benchPut(b, h, src, dst))
			}
		}
	}
	benchRatio(b, "putfile/cp", "putfile", "cp", put, cp)
	benchRatio(b, "putfile_stream/cp", "putfile_stream", "plain_stream", stream, plain)
}

// benchPlainStream sends the bytes of src through a unix stream socket to
// a dd process that writes them to dst, with plain reads and writes of
// 1 MiB on both ends, and returns how long it took, from starting dd to
// its end.
func benchPlainStream(b *testing.B, src, dst string) time.Duration {
	b.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		b.Fatalf("socketpair: %v", err)
	}
	local, remote := os.NewFile(uintptr(fds[0]), "stream"), os.NewFile(uintptr(fds[1]), "stream-dd")
	defer local.Close()
	in, err := os.Open(src)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	cmd := exec.Command("dd", "of="+dst, "bs=1M", "status=none")
	cmd.Stdin = remote
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatalf("start dd: %v", err)
	}
	remote.Close()
	buf := make([]byte, 1<<20)
	for {
		n, rerr := in.Read(buf)
		if n > 0 {
			if _, err := local.Write(buf[:n]); err != nil {
				b.Fatalf("write to dd: %v", err)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			b.Fatalf("read %s: %v", src, rerr)
		}
	}
	local.Close()
	if err := cmd.Wait(); err != nil {
		b.Fatalf("dd: %v", err)
	}
	return time.Since(start)
}

// writeBenchFile writes size bytes that do not compress, and syncs them:
// neither side of the benchmark is to pay for writing back the source.
func writeBenchFile(b *testing.B, path string, size int) {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	x := uint64(0x9e3779b97f4a7c15)
	for done := 0; done < size; done += len(buf) {
		for i := 0; i+8 <= len(buf); i += 8 {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			for k := range 8 {
				buf[i+k] = byte(x >> (8 * k))
			}
		}
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkPutTree10k puts a tree of 10,000 small files (100 directories
// of 100 files of 1 to 4 KiB) on a lab host and copies it there with
// `tar c | tar x` run as a job on the host, each timed from the request
// to the end, rounds interleaved (ABBA), and prints
//
//	RATIO puttree/tar <x> (min, max, n)
func BenchmarkPutTree10k(b *testing.B) {
	h := benchLabHost(b)
	dir := b.TempDir()
	src := filepath.Join(dir, "tree")
	for d := range 100 {
		sub := filepath.Join(src, fmt.Sprintf("d%02d", d))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			b.Fatal(err)
		}
		for f := range 100 {
			data := make([]byte, 1024+((d*100+f)%4)*1024)
			for i := range data {
				data[i] = byte(i + f)
			}
			if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%03d", f)), data, 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	dst := filepath.Join(dir, "copy")
	tarOnce := func() time.Duration {
		took := benchJob(b, h, "/bin/sh", "-c", "mkdir "+dst+" && tar -C "+src+" -cf - . | tar -C "+dst+" -xf -")
		if err := os.RemoveAll(dst); err != nil {
			b.Fatal(err)
		}
		return took
	}
	benchPut(b, h, src, dst) // warm up, as BenchmarkPutFile256MiB does
	tarOnce()
	var put, tar []time.Duration
	for b.Loop() {
		for i := range benchRounds / 2 {
			if i%2 == 0 {
				put = append(put, benchPut(b, h, src, dst))
				tar = append(tar, tarOnce())
			} else {
				tar = append(tar, tarOnce())
				put = append(put, benchPut(b, h, src, dst))
			}
		}
	}
	benchRatio(b, "puttree/tar", "puttree", "tar", put, tar)
}
