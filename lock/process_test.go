package lock

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"mplock/internal/proctest"
	"mplock/shm"
)

// The helper process: this test binary run again with MPLOCK_LOCK_HELPER set.
// It takes the lock described by its environment, says "locked" on stdout,
// and releases it when its stdin has a line or closes ("release" protocol);
// or, with MPLOCK_LOCK_HELPER=try, reports "free" or "busy" for one TryLock.
const helperEnv = "MPLOCK_LOCK_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		if err := helperMain(mode); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func helperMain(mode string) error {
	if mode == "posix" {
		// A classic, process-owned POSIX record lock (F_SETLKW), as lockf(3)
		// and most programs take them: not an OFD lock.
		f, err := os.OpenFile(os.Getenv("MPLOCK_LOCK_PATH"), os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return err
		}
		lk := unix.Flock_t{Type: unix.F_WRLCK}
		if err := unix.FcntlFlock(f.Fd(), unix.F_SETLKW, &lk); err != nil {
			return err
		}
		fmt.Println("locked")
		io.Copy(io.Discard, os.Stdin)
		return nil
	}
	kind, err := ParseKind(os.Getenv("MPLOCK_LOCK_KIND"))
	if err != nil {
		return err
	}
	cfg := Config{Path: os.Getenv("MPLOCK_LOCK_PATH")}
	cfg.SemID, _ = strconv.Atoi(os.Getenv("MPLOCK_LOCK_SEMID"))
	if kind == Sem || kind == Spin {
		r, err := shm.Open(os.NewFile(3, "region"))
		if err != nil {
			return err
		}
		b, err := shm.OpenBank(r)
		if err != nil {
			return err
		}
		cfg.Word = &b.Sem.Word
	}
	l, err := Open(kind, cfg)
	if err != nil {
		return err
	}
	switch mode {
	case "try":
		ok, err := l.TryLock()
		if err != nil {
			return err
		}
		if ok {
			fmt.Println("free")
			return l.Unlock()
		}
		fmt.Println("busy")
		return nil
	case "hold":
		if err := l.Lock(context.Background()); err != nil {
			return err
		}
		fmt.Println("locked")
		bufio.NewReader(os.Stdin).ReadString('\n')
		if err := l.Unlock(); err != nil {
			return err
		}
		fmt.Println("released")
		return nil
	}
	return fmt.Errorf("unknown mode %q", mode)
}

// shared is what the processes of one test share for a kind.
type shared struct {
	kind   Kind
	path   string
	semID  int
	region *shm.Region
	bank   *shm.Bank
}

func newShared(t testing.TB, kind Kind) *shared {
	t.Helper()
	s := &shared{kind: kind, path: t.TempDir() + "/test.lock"}
	switch kind {
	case SysV:
		id, err := CreateSysV()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := RemoveSysV(id); err != nil {
				t.Error(err)
			}
		})
		s.semID = id
	case Sem, Spin:
		r, err := shm.Create(shm.CreateOptions{Size: shm.BankSize(1)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		if s.bank, err = shm.NewBank(r, 1, 0, 1); err != nil {
			t.Fatal(err)
		}
		s.region = r
	}
	return s
}

// config is this process's view of the shared lock.
func (s *shared) config() Config {
	cfg := Config{Path: s.path, SemID: s.semID, CheckEvery: 5 * time.Millisecond}
	if s.bank != nil {
		cfg.Word = &s.bank.Sem.Word
	}
	return cfg
}

// open returns this process's Locker; recovered receives dead holders' pids.
func (s *shared) open(t *testing.T, recovered chan<- int) Locker {
	t.Helper()
	cfg := s.config()
	if recovered != nil {
		cfg.OnRecover = func(pid int) { recovered <- pid }
	}
	l, err := Open(s.kind, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// helper is a running helper process.
type helper struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
}

func (s *shared) start(t *testing.T, mode string) *helper {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, "MPLOCK_LOCK_KIND="+s.kind.String(),
		"MPLOCK_LOCK_PATH="+s.path, "MPLOCK_LOCK_SEMID="+strconv.Itoa(s.semID))
	if s.region != nil {
		cmd.ExtraFiles = []*os.File{s.region.File()}
	}
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helper{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout)}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return h
}

// expect reads the helper's next line and fails unless it is want.
func (h *helper) expect(t *testing.T, want string) {
	t.Helper()
	line, err := h.out.ReadString('\n')
	if strings.TrimSpace(line) != want {
		t.Fatalf("helper said %q (%v), want %q", line, err, want)
	}
}

// mustBlock starts f and checks that it does not return at once; the
// returned function waits for it to return and fails on error or when it
// never does (a lock that is never granted).
func mustBlock(t *testing.T, what string, f func() error) (wait func(*testing.T)) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		t.Fatalf("%s returned (%v) while another process held the lock", what, err)
	case <-time.After(50 * time.Millisecond):
	}
	return func(t *testing.T) {
		t.Helper()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s never returned after the other process released the lock", what)
		}
	}
}

var excluding = []Kind{Flock, Fcntl, Sem, SysV, Spin}

func TestExcludesAcrossProcesses(t *testing.T) {
	for _, kind := range excluding {
		t.Run(kind.String(), func(t *testing.T) {
			s := newShared(t, kind)
			l := s.open(t, nil)

			// Another process holds it: we can neither take it nor wait past it.
			h := s.start(t, "hold")
			h.expect(t, "locked")
			if ok, err := l.TryLock(); ok || err != nil {
				t.Fatalf("TryLock while another process holds it = %v, %v; want false", ok, err)
			}
			wait := mustBlock(t, "Lock", func() error { return l.Lock(context.Background()) })
			io.WriteString(h.stdin, "release\n")
			h.expect(t, "released")
			wait(t)

			// We hold it: another process finds it busy, then free.
			s.start(t, "try").expect(t, "busy")
			if err := l.Unlock(); err != nil {
				t.Fatal(err)
			}
			s.start(t, "try").expect(t, "free")
		})
	}
}

func TestHolderKilledWithSIGKILL(t *testing.T) {
	for _, kind := range excluding {
		t.Run(kind.String(), func(t *testing.T) {
			s := newShared(t, kind)
			recovered := make(chan int, 1)
			l := s.open(t, recovered)
			h := s.start(t, "hold")
			h.expect(t, "locked")
			wait := mustBlock(t, "Lock", func() error { return l.Lock(context.Background()) })
			h.cmd.Process.Kill()
			h.cmd.Wait() // reaped: not even a zombie is left to look alive
			wait(t)
			switch kind {
			case Sem, Spin:
				// The kernel knows nothing of these: a waiter must find the
				// holder dead and take over, and say so.
				select {
				case pid := <-recovered:
					if pid != h.cmd.Process.Pid {
						t.Fatalf("recovered from pid %d, want the killed holder %d", pid, h.cmd.Process.Pid)
					}
				default:
					t.Fatal("took the lock without reporting the recovery")
				}
			default:
				if len(recovered) != 0 {
					t.Fatal("reported a recovery for a lock the kernel released")
				}
			}
			if err := l.Unlock(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestFlockInteropWithUtilLinux(t *testing.T) {
	bin := proctest.Tool(t, "flock", "util-linux")
	s := newShared(t, Flock)
	l := s.open(t, nil)

	// flock(1) holds the file: we are excluded until it exits.
	cmd := exec.Command(bin, "--exclusive", s.path, "sh", "-c", "echo locked; read x; exit 0")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	if line, _ := bufio.NewReader(stdout).ReadString('\n'); line != "locked\n" {
		t.Fatalf("flock(1) said %q", line)
	}
	if ok, _ := l.TryLock(); ok {
		t.Fatal("TryLock succeeded while flock(1) held the file")
	}
	wait := mustBlock(t, "Lock", func() error { return l.Lock(context.Background()) })
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	wait(t)

	// We hold it: flock(1) --nonblock fails, and succeeds once we release.
	if err := exec.Command(bin, "--nonblock", s.path, "true").Run(); err == nil {
		t.Fatal("flock(1) --nonblock took the file while we held it")
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command(bin, "--nonblock", s.path, "true").Run(); err != nil {
		t.Fatalf("flock(1) --nonblock after our release: %v", err)
	}
}

func TestFcntlConflictsWithPOSIXRecordLock(t *testing.T) {
	s := newShared(t, Fcntl)
	l := s.open(t, nil)
	h := s.start(t, "posix")
	h.expect(t, "locked")
	if ok, _ := l.TryLock(); ok {
		t.Fatal("OFD TryLock succeeded while another process held a POSIX lock on the file")
	}
	wait := mustBlock(t, "Lock", func() error { return l.Lock(context.Background()) })
	h.stdin.Close()
	h.cmd.Wait()
	wait(t)
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
}

func TestUnlockByNonHolderIsRefused(t *testing.T) {
	for _, kind := range []Kind{Sem, Spin} {
		t.Run(kind.String(), func(t *testing.T) {
			s := newShared(t, kind)
			l := s.open(t, nil)
			if err := l.Unlock(); err != ErrNotHeld {
				t.Fatalf("Unlock of a free lock = %v, want ErrNotHeld", err)
			}
			h := s.start(t, "hold")
			h.expect(t, "locked")
			if err := l.Unlock(); err != ErrNotHeld {
				t.Fatalf("Unlock of another process's lock = %v, want ErrNotHeld", err)
			}
			s.start(t, "try").expect(t, "busy") // and it is still held
		})
	}
}

func TestSysVRemoval(t *testing.T) {
	id, err := CreateSysV()
	if err != nil {
		t.Fatal(err)
	}
	if !SysVExists(id) {
		t.Fatal("new semaphore does not exist")
	}
	l, err := Open(SysV, Config{SemID: id})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Lock(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A waiter blocked on a removed semaphore gets an error, not a hang.
	l2, _ := Open(SysV, Config{SemID: id})
	wait := mustBlock(t, "Lock", func() error {
		if err := l2.Lock(context.Background()); err == nil {
			return fmt.Errorf("Lock on a removed semaphore succeeded")
		}
		return nil
	})
	if err := RemoveSysV(id); err != nil {
		t.Fatal(err)
	}
	wait(t)
	if SysVExists(id) {
		t.Fatal("semaphore exists after RemoveSysV")
	}
	if err := RemoveSysV(id); err != nil {
		t.Fatalf("second RemoveSysV = %v, want nil", err)
	}
	if _, err := Open(SysV, Config{SemID: id}); err == nil {
		t.Fatal("Open of a removed semaphore succeeded")
	}
}

func TestHeldElsewhere(t *testing.T) {
	s := newShared(t, Flock)
	if held, err := HeldElsewhere(s.path); held || err != nil {
		t.Fatalf("missing file: held %v, %v", held, err)
	}
	h := s.start(t, "hold")
	h.expect(t, "locked")
	if held, err := HeldElsewhere(s.path); !held || err != nil {
		t.Fatalf("while another process holds it: held %v, %v; want true", held, err)
	}
	io.WriteString(h.stdin, "release\n")
	h.expect(t, "released")
	if held, err := HeldElsewhere(s.path); held || err != nil {
		t.Fatalf("after release: held %v, %v; want false", held, err)
	}
}
