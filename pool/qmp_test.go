package pool

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeQMP serves QMP on a unix socket as QEMU does, for one connection:
// a greeting, then for each command the reply reply returns (an event
// first for system_reset). It sends the commands it got on the channel
// it returns, closed when the client hangs up.
func fakeQMP(t *testing.T, greet string, reply func(cmd string) string) (string, <-chan string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "g.qmp")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lis.Close() })
	got := make(chan string, 10)
	go func() {
		defer close(got)
		conn, err := lis.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		conn.Write([]byte(greet + "\r\n"))
		sc := bufio.NewScanner(conn)
		for sc.Scan() {
			var m struct {
				Execute string `json:"execute"`
			}
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				conn.Write([]byte(`{"error": {"class": "GenericError", "desc": "JSON parse error"}}` + "\r\n"))
				continue
			}
			got <- m.Execute
			if m.Execute == "system_reset" {
				conn.Write([]byte(`{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "RESET", "data": {"guest": false, "reason": "host-qmp-system-reset"}}` + "\r\n"))
			}
			r := reply(m.Execute)
			if r == "" {
				continue // never answers
			}
			conn.Write([]byte(r + "\r\n"))
		}
	}()
	return sock, got
}

const qemuGreeting = `{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": "Debian 1:7.2"}, "capabilities": ["oob"]}}`

func commands(ch <-chan string) []string {
	var out []string
	for c := range ch {
		out = append(out, c)
	}
	return out
}

func TestQMPSystemReset(t *testing.T) {
	sock, got := fakeQMP(t, qemuGreeting, func(string) string { return `{"return": {}}` })
	if err := qmpRun(context.Background(), sock, "system_reset"); err != nil {
		t.Fatal(err)
	}
	if c, want := strings.Join(commands(got), " "), "qmp_capabilities system_reset"; c != want {
		t.Errorf("QEMU got %q, want %q", c, want)
	}
}

func TestQMPErrorReply(t *testing.T) {
	sock, _ := fakeQMP(t, qemuGreeting, func(cmd string) string {
		if cmd == "system_reset" {
			return `{"error": {"class": "CommandNotFound", "desc": "The command system_reset has not been found"}}`
		}
		return `{"return": {}}`
	})
	err := qmpRun(context.Background(), sock, "system_reset")
	if err == nil || !strings.Contains(err.Error(), "system_reset: CommandNotFound: The command system_reset has not been found") || !strings.Contains(err.Error(), sock) {
		t.Errorf("err = %v, want QEMU's error with the socket and the command", err)
	}
}

func TestQMPNotQEMU(t *testing.T) {
	sock, _ := fakeQMP(t, `{"hello": 1}`, func(string) string { return `{"return": {}}` })
	err := qmpRun(context.Background(), sock, "system_reset")
	if err == nil || !strings.Contains(err.Error(), "not QEMU's greeting") {
		t.Errorf("err = %v, want one saying the peer is not QMP", err)
	}
}

func TestQMPNoAnswerHonoursContext(t *testing.T) {
	sock, _ := fakeQMP(t, qemuGreeting, func(cmd string) string {
		if cmd == "system_reset" {
			return ""
		}
		return `{"return": {}}`
	})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := qmpRun(ctx, sock, "system_reset")
	if err == nil || !strings.Contains(err.Error(), "deadline exceeded") {
		t.Errorf("err = %v, want the context's deadline", err)
	}
}

func TestQMPNoSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.qmp")
	err := qmpRun(context.Background(), sock, "system_reset")
	if err == nil || !strings.Contains(err.Error(), sock) {
		t.Errorf("err = %v, want one naming %s", err, sock)
	}
}

func TestResetGuestUnknownHost(t *testing.T) {
	in := &Instance{guests: map[string]*vmGuest{}}
	if err := in.ResetGuest(context.Background(), "h9"); err == nil || !strings.Contains(err.Error(), "h9") {
		t.Errorf("err = %v, want one naming h9", err)
	}
}

// TestQMPRealQEMU speaks to a real QEMU, without a guest (-machine none):
// the greeting, qmp_capabilities and system_reset as QEMU does them.
func TestQMPRealQEMU(t *testing.T) {
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Skip("requires qemu-system-x86_64 (apt-get install qemu-system-x86)")
	}
	sock := filepath.Join(t.TempDir(), "q.qmp")
	cmd := exec.Command(qemu, append([]string{"-machine", "none", "-nodefaults", "-no-user-config", "-display", "none"}, qmpArgs(sock)...)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		err = qmpRun(ctx, sock, "query-status", "system_reset")
		if err == nil || ctx.Err() != nil {
			break
		}
		time.Sleep(50 * time.Millisecond) // QEMU makes the socket at start
	}
	if err != nil {
		t.Fatalf("QMP with QEMU: %v", err)
	}
}
