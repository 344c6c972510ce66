package process

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/cutover-dev/cutover/pkg/appspec"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

// This file holds the listening sockets the Supervisor owns for an app with
// Spec.Listen, and how a process receives them: the systemd
// socket-activation protocol (sd_listen_fds(3)).
//
// The process gets fds 3, 4, … in the order of Spec.Listen, then one more:
// a private unix socket made for that process alone (named
// appspec.HealthFDName), on which health checks reach it and not a process
// that shares the public sockets. The environment says so:
//
//	LISTEN_FDS=<len(Listen)+1>
//	LISTEN_FDNAMES=<name of each Listen entry>:cutover-health
//	LISTEN_PID=<pid of the process that reads them>
//
// The name of a public socket is FDName(listener): "tcp-127.0.0.1-8080",
// "unix-run-app.sock" (the entry without its scheme separator, every byte
// that is not a letter, a digit, '.', '_' or '-' made '-').
//
// LISTEN_PID: the process is `/bin/sh -c SCRIPT`, whose pid is known only
// once it runs, so SCRIPT starts with `LISTEN_PID=$$; export LISTEN_PID;`.
// A reader checks LISTEN_PID against its own pid (go-systemd's
// activation.Files, libsystemd's sd_listen_fds, python code that follows
// the protocol), so the app must be the shell itself: a simple command
// (`bin/app --flag`, `python3 app.py`) is run with `exec` prepended; a
// compound one (with ; & | ( ) { } ` or a newline, or beginning with an
// assignment, a reserved word or exec) is run as written, and must end
// with `exec app` for the app to accept the sockets (`cd web && exec
// bin/app`); a program it forks sees a LISTEN_PID that is not its own.

// FDName is the LISTEN_FDNAMES name of a public socket (see the file
// comment); names are at most 255 bytes, as sd_listen_fds_with_names wants.
func FDName(l appspec.Listener) string {
	b := []byte(l.Network + "-" + strings.TrimPrefix(l.Address, "/"))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			b[i] = '-'
		}
	}
	if len(b) > 255 {
		b = b[:255]
	}
	return string(b)
}

// sockets is the set of listening sockets of one app: the agent's copies,
// kept open across the app's releases and restarts.
type sockets struct {
	listen []appspec.Listener
	files  []*os.File // parallel to listen
	addrs  []string   // the bound addresses (a tcp port 0 resolved)
	// lost says an adopted app's sockets could not be taken back from it
	// (pidfd_getfd failed): files is empty, and an Overlap is refused.
	lost error
}

// same reports whether the set serves exactly listen, in that order.
func (ss *sockets) same(listen []appspec.Listener) bool {
	if ss == nil || ss.lost != nil || len(ss.listen) != len(listen) {
		return false
	}
	for i := range listen {
		if ss.listen[i] != listen[i] {
			return false
		}
	}
	return true
}

func (ss *sockets) close() {
	if ss == nil {
		return
	}
	for _, f := range ss.files {
		_ = f.Close()
	}
	ss.files = nil
}

// socketsFor returns app's socket set for listen, opening what is missing
// and closing what listen no longer names. Call with s.mu held.
func (s *Supervisor) socketsFor(app string, listen []appspec.Listener) (*sockets, error) {
	if len(listen) == 0 {
		s.sockets[app].close()
		delete(s.sockets, app)
		return nil, nil
	}
	old := s.sockets[app]
	if old.same(listen) {
		return old, nil
	}
	have := map[appspec.Listener]int{}
	if old != nil {
		for i, l := range old.listen {
			if i < len(old.files) {
				have[l] = i
			}
		}
	}
	ns := &sockets{listen: append([]appspec.Listener(nil), listen...)}
	kept := map[int]bool{}
	for _, l := range listen {
		if i, ok := have[l]; ok {
			kept[i] = true
			ns.files = append(ns.files, old.files[i])
			ns.addrs = append(ns.addrs, old.addrs[i])
			continue
		}
		f, addr, err := openListener(l)
		if err != nil {
			for i, f := range ns.files {
				if _, reused := have[ns.listen[i]]; !reused {
					_ = f.Close()
				}
			}
			return nil, fmt.Errorf("application %q: listen on %s: %v: %w", app, l, err, errkind.FailedPrecondition)
		}
		ns.files = append(ns.files, f)
		ns.addrs = append(ns.addrs, addr)
	}
	if old != nil {
		for i, f := range old.files {
			if !kept[i] {
				_ = f.Close()
			}
		}
	}
	s.sockets[app] = ns
	return ns, nil
}

// openListener opens l (a stale unix socket file is removed first) and
// returns the agent's copy of its fd, close-on-exec, and its bound address.
func openListener(l appspec.Listener) (*os.File, string, error) {
	if l.Network == "unix" {
		if fi, err := os.Lstat(l.Address); err == nil && fi.Mode()&fs.ModeSocket != 0 {
			_ = os.Remove(l.Address)
		}
	}
	lis, err := net.Listen(l.Network, l.Address)
	if err != nil {
		return nil, "", err
	}
	if ul, ok := lis.(*net.UnixListener); ok {
		ul.SetUnlinkOnClose(false) // the path outlives the agent's copy
	}
	defer lis.Close() // f is a dup; the socket stays open
	// Not lis.File: its Fd, which exec calls, would make the socket's
	// shared file description blocking under the apps that accept on it.
	rc, err := lis.(syscall.Conn).SyscallConn()
	if err != nil {
		return nil, "", err
	}
	dup := -1
	cerr := rc.Control(func(fd uintptr) { dup, err = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) })
	if err = errors.Join(cerr, err); err != nil {
		return nil, "", err
	}
	return os.NewFile(uintptr(dup), l.String()), lis.Addr().String(), nil
}

// healthSocket makes the private listening socket of one process of app,
// mode 0600, in dir, and returns the agent's copy and its path.
func healthSocket(dir, app string) (*os.File, string, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, "", err
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	path := filepath.Join(dir, app+"-"+hex.EncodeToString(rnd[:])+".health")
	if len(path) >= 108 { // sun_path
		return nil, "", fmt.Errorf("health socket path %s is too long for a unix socket; use a shorter run directory", path)
	}
	f, _, err := openListener(appspec.Listener{Network: "unix", Address: path})
	if err != nil {
		return nil, "", err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return nil, "", err
	}
	return f, path, nil
}

// listenEnv is the socket-activation environment for ss and the health socket.
func listenEnv(ss *sockets) []string {
	names := make([]string, 0, len(ss.listen)+1)
	for _, l := range ss.listen {
		names = append(names, FDName(l))
	}
	names = append(names, appspec.HealthFDName)
	return []string{"LISTEN_FDS=" + strconv.Itoa(len(names)), "LISTEN_FDNAMES=" + strings.Join(names, ":")}
}

// listenScript is the `sh -c` script that runs command with LISTEN_PID set
// to the shell's pid, the command exec'ed when it is a simple one.
func listenScript(command string) string {
	const prologue = "LISTEN_PID=$$; export LISTEN_PID; "
	if simpleCommand(command) {
		return prologue + "exec " + command
	}
	return prologue + command
}

// simpleCommand reports, conservatively, whether command is one simple
// command that `exec` can prefix.
func simpleCommand(command string) bool {
	c := strings.TrimSpace(command)
	for _, redir := range []string{">&", "<&"} { // 2>&1 is a redirection
		c = strings.ReplaceAll(c, redir, ">")
	}
	if c == "" || strings.ContainsAny(c, ";&|(){}`\n!") {
		return false
	}
	first, _, _ := strings.Cut(c, " ")
	first, _, _ = strings.Cut(first, "\t")
	if strings.Contains(first, "=") {
		return false
	}
	switch first {
	case "exec", "if", "for", "while", "until", "case", "time", "[[", "function", "select", "coproc":
		return false
	}
	return true
}

// isListener reports whether fd is a listening socket bound to addr (as
// its bound address prints: host:port, or a unix path).
func isListener(fd int, network, addr string) error {
	acc, err := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_ACCEPTCONN)
	if err != nil {
		return err
	}
	if acc != 1 {
		return errors.New("not a listening socket")
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		return err
	}
	var got string
	switch sa := sa.(type) {
	case *syscall.SockaddrInet4:
		got = net.JoinHostPort(net.IP(sa.Addr[:]).String(), strconv.Itoa(sa.Port))
	case *syscall.SockaddrInet6:
		got = net.JoinHostPort(net.IP(sa.Addr[:]).String(), strconv.Itoa(sa.Port))
	case *syscall.SockaddrUnix:
		got = sa.Name
	}
	if (network == "unix") != (strings.HasPrefix(got, "/") || got == "") || got != addr {
		return fmt.Errorf("bound to %q, want %q", got, addr)
	}
	return nil
}
