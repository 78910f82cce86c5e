package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/internal/kernlog"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The kernel log follower: the agent reads /dev/kmsg from its first
// KmsgCursor or KmsgRead on, and keeps the last kmsgKeep records for the
// controller to read from a cursor. It reads only when asked (the fd is
// non-blocking, drained to its end on each call), so a record the kernel
// logged before the call is always in its answer. The kernel log is the
// machine's: a lab agent's namespace hosts share it.

// kmsgKeep is how many records the follower keeps.
const kmsgKeep = 8192

// kmsgPath is the kernel log device.
const kmsgPath = "/dev/kmsg"

type kmsgFollower struct {
	mu   sync.Mutex
	id   string
	fd   int
	err  error // opening failed: every call returns it
	recs []kernlog.Record
	// next is the sequence number of the next record the kernel logs.
	next uint64
	buf  []byte
}

var kmsg = &kmsgFollower{fd: -1}

// open opens the log and reads what the kernel already has, to learn its
// next sequence number; those records are not kept.
func (k *kmsgFollower) open() error {
	if k.fd >= 0 || k.err != nil {
		return k.err
	}
	fd, err := unix.Open(kmsgPath, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		k.err = fmt.Errorf("open %s: %w", kmsgPath, err)
		return k.err
	}
	var id [8]byte
	rand.Read(id[:])
	k.fd, k.id, k.buf = fd, hex.EncodeToString(id[:]), make([]byte, 16<<10)
	return k.drain(false)
}

// drain reads every record the kernel has for the follower; keep tells
// whether to keep them.
func (k *kmsgFollower) drain(keep bool) error {
	for {
		n, err := unix.Read(k.fd, k.buf)
		switch {
		case errors.Is(err, unix.EAGAIN):
			return nil
		case errors.Is(err, unix.EPIPE):
			continue // overwritten before read: the next read goes on after the gap
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return fmt.Errorf("read %s: %w", kmsgPath, err)
		case n == 0:
			return nil
		}
		r, err := kernlog.ParseKmsg(k.buf[:n])
		if err != nil {
			continue // not a record this parser knows: skipped, not fatal
		}
		k.next = r.Seq + 1
		if keep {
			k.recs = append(k.recs, r)
		}
	}
}

// trim drops the oldest records beyond kmsgKeep.
func (k *kmsgFollower) trim() {
	if over := len(k.recs) - kmsgKeep; over > 0 {
		k.recs = append(k.recs[:0:0], k.recs[over:]...)
	}
}

func (k *kmsgFollower) cursor() (*pb.KmsgCursorReply, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.open(); err != nil {
		return nil, err
	}
	if err := k.drain(true); err != nil {
		return nil, err
	}
	k.trim()
	return &pb.KmsgCursorReply{Follower: k.id, NextSeq: k.next, BootId: bootID()}, nil
}

func (k *kmsgFollower) read(follower string, from uint64) (*pb.KmsgReadReply, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.open(); err != nil {
		return nil, err
	}
	if err := k.drain(true); err != nil {
		return nil, err
	}
	k.trim()
	r := &pb.KmsgReadReply{NextSeq: k.next}
	if follower != k.id {
		r.Restarted = true
		from = 0
	}
	for _, rec := range k.recs {
		if rec.Seq >= from {
			r.Records = append(r.Records, &pb.KmsgRecord{Seq: rec.Seq, Level: int32(rec.Level), Facility: int32(rec.Facility), Micros: rec.Micros, Text: rec.Text})
		}
	}
	if !r.Restarted && k.next > from {
		r.Lost = k.next - from - uint64(len(r.Records))
	}
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	r.WallUnixNano, r.MicrosNow = time.Now().UnixNano(), ts.Nano()/1000
	return r, nil
}

// kmsgError is the status of a follower error: the kernel log cannot be
// read here (no /dev/kmsg, or dmesg_restrict in a user namespace).
func kmsgError(err error) error {
	return status.Errorf(codes.FailedPrecondition, "kernel log: %v", err)
}

// KmsgCursor returns where the kernel log ends now.
func (s *Server) KmsgCursor(context.Context, *pb.KmsgCursorRequest) (*pb.KmsgCursorReply, error) {
	r, err := kmsg.cursor()
	if err != nil {
		return nil, kmsgError(err)
	}
	return r, nil
}

// KmsgRead returns the kernel log records from a cursor on.
func (s *Server) KmsgRead(_ context.Context, req *pb.KmsgReadRequest) (*pb.KmsgReadReply, error) {
	r, err := kmsg.read(req.Follower, req.FromSeq)
	if err != nil {
		return nil, kmsgError(err)
	}
	return r, nil
}
