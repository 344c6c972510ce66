package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cutover-dev/cutover/pkg/logging"
)

// This file holds what lets the app processes outlive the agent: the
// record of each process in RunDir, Detach, and Adopt.
//
// RunDir/<app>.json records the app's supervised process;
// RunDir/<app>.next.json the new process of an Overlap not finished yet
// (Finish turns it into <app>.json). Each is a JSON record (see record),
// written when the process starts and removed when it is stopped.

// Record roles: the suffix of a record's file name.
const (
	roleMain = ".json"
	roleNext = ".next.json"
	// legacySuffix is the plain pid file of agents before records.
	legacySuffix = ".pid"
)

// record is what RunDir holds about one app process.
type record struct {
	PID  int `json:"pid"`
	PGID int `json:"pgid"`
	// StartTime is field 22 of /proc/<pid>/stat (clock ticks after boot):
	// with the pid, the process's identity, so a reused pid is not taken
	// for the app.
	StartTime   uint64 `json:"start_time"`
	Application string `json:"application"`
	Release     string `json:"release"`
	// Spec is what restarts the process when it exits.
	Spec Spec `json:"spec"`
	// Addrs are the bound addresses of its listening sockets (Spec.Listen's order).
	Addrs []string `json:"addrs,omitempty"`
	// Inodes are the sockets' inode numbers, to find them among its fds.
	Inodes       []uint64 `json:"inodes,omitempty"`
	HealthSocket string   `json:"health_socket,omitempty"`
}

func (s *Supervisor) recordPath(role, app string) string {
	return filepath.Join(s.cfg.RunDir, app+role)
}

func (s *Supervisor) healthDir() string {
	if s.cfg.RunDir == "" {
		return os.TempDir()
	}
	return s.cfg.RunDir
}

// writeRecord records r, a process of spec on sockets ss. Call with s.mu held.
func (s *Supervisor) writeRecord(role string, spec Spec, r *running, ss *sockets) {
	if s.cfg.RunDir == "" {
		return
	}
	rec := record{PID: r.pid, PGID: r.pgid, Application: spec.Application, Release: spec.Release, Spec: spec, HealthSocket: r.health}
	rec.StartTime, _ = startTime(r.pid)
	if ss != nil {
		rec.Addrs = ss.addrs
		for _, f := range ss.files {
			var st syscall.Stat_t
			if syscall.Fstat(int(f.Fd()), &st) == nil {
				rec.Inodes = append(rec.Inodes, st.Ino)
			}
		}
	}
	b, err := json.MarshalIndent(rec, "", "  ")
	if err == nil {
		err = os.MkdirAll(s.cfg.RunDir, 0o750)
	}
	if err == nil {
		tmp := s.recordPath(role, spec.Application) + ".tmp"
		if err = os.WriteFile(tmp, append(b, '\n'), 0o640); err == nil {
			err = os.Rename(tmp, s.recordPath(role, spec.Application))
		}
	}
	if err != nil {
		s.cfg.Log.Warn("process record not written; a restarted agent could not adopt this process", logging.KeyApplication, spec.Application, "error", err)
	}
}

// removeRecord removes app's record under role if it is pid's. Call
// without s.mu.
func (s *Supervisor) removeRecord(role, app string, pid int) {
	if s.cfg.RunDir == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	path := s.recordPath(role, app)
	if rec, err := readRecord(path); err == nil && rec.PID == pid {
		_ = os.Remove(path)
	}
}

// promoteRecord makes the next record of app, pid's, its main one. Call
// with s.mu held.
func (s *Supervisor) promoteRecord(app string, pid int) {
	if s.cfg.RunDir == "" {
		return
	}
	next := s.recordPath(roleNext, app)
	if rec, err := readRecord(next); err == nil && rec.PID == pid {
		if err := os.Rename(next, s.recordPath(roleMain, app)); err != nil {
			s.cfg.Log.Warn("process record not moved; a restarted agent could not adopt this process", logging.KeyApplication, app, "error", err)
		}
	}
}

func readRecord(path string) (record, error) {
	var rec record
	b, err := os.ReadFile(path)
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, fmt.Errorf("%s: %w", path, err)
	}
	if rec.PID <= 1 || rec.PGID <= 1 || rec.Application == "" {
		return rec, fmt.Errorf("%s: not a process record", path)
	}
	return rec, nil
}

// startTime returns field 22 of /proc/<pid>/stat.
func startTime(pid int) (uint64, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, err
	}
	i := strings.LastIndexByte(string(b), ')') // the command may hold spaces and parentheses
	if i < 0 {
		return 0, errors.New("unreadable /proc stat")
	}
	f := strings.Fields(string(b[i+1:])) // f[0] is field 3
	if len(f) < 20 {
		return 0, errors.New("short /proc stat")
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// liveness says what runs under a record's pid.
type liveness int

const (
	pidGone   liveness = iota // no process has the pid
	pidReused                 // another process has it
	pidAlive                  // the recorded process runs
)

func (rec record) liveness() liveness {
	st, err := startTime(rec.PID)
	switch {
	case err != nil:
		return pidGone
	case st != rec.StartTime:
		return pidReused
	}
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(rec.PID), "stat"))
	if i := strings.LastIndexByte(string(b), ')'); err == nil && i > 0 && strings.HasPrefix(string(b[i+1:]), " Z") {
		return pidGone // a zombie: exited, not reaped yet
	}
	return pidAlive
}

// Adopt takes back the app processes that a previous agent left running
// (see Detach), from their records in RunDir, and returns their apps,
// sorted. An adopted process is supervised again: its exit is watched (a
// pidfd), it is restarted with its recorded spec when it exits, and Stop
// stops it. The listening sockets of an adopted app are taken back from
// the process (pidfd_getfd, which needs the app's user or root, and ptrace
// permission); if that fails, a warning is logged, Info.SocketsLost says
// why, and the app's next Overlap fails (Restart instead). Records of
// processes that are gone are removed (with what is left of their group),
// as is a record whose pid another process now has, leaving that process
// alone. The new process of an unfinished Overlap is stopped: the
// activation that started it did not finish. Call it before starting any
// app.
func (s *Supervisor) Adopt(ctx context.Context) ([]string, error) {
	if s.cfg.RunDir == "" {
		return nil, nil
	}
	entries, err := os.ReadDir(s.cfg.RunDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var adopted []string
	for _, e := range entries {
		path := filepath.Join(s.cfg.RunDir, e.Name())
		name := e.Name()
		switch {
		case strings.HasSuffix(name, ".tmp"):
			_ = os.Remove(path)
		case strings.HasSuffix(name, roleNext):
			if err := s.dropRecorded(ctx, path, "the new process of an unfinished handover"); err != nil {
				return adopted, err
			}
		case strings.HasSuffix(name, roleMain):
			rec, err := readRecord(path)
			if err == nil && rec.liveness() == pidAlive {
				if err := s.adopt(rec); err == nil {
					adopted = append(adopted, rec.Application)
					continue
				} else {
					s.cfg.Log.Warn("app process not adopted", logging.KeyApplication, rec.Application, "pid", rec.PID, "error", err)
				}
			}
			if err := s.dropRecorded(ctx, path, "a process left by the previous agent"); err != nil {
				return adopted, err
			}
		case strings.HasSuffix(name, legacySuffix):
			if err := stopLegacy(ctx, path, DefaultStopGrace, s.cfg.Log); err != nil {
				return adopted, err
			}
		}
	}
	return adopted, nil
}

// dropRecorded stops the process a record names if it still runs (its
// stop signal, SIGKILL after its grace), kills what is left of its group
// if the pid is free, and removes the record and its health socket.
func (s *Supervisor) dropRecorded(ctx context.Context, path, what string) error {
	rec, err := readRecord(path)
	if err == nil {
		switch rec.liveness() {
		case pidAlive:
			s.cfg.Log.Warn("stopping "+what, logging.KeyApplication, rec.Application, "pid", rec.PID)
			spec := rec.Spec.withDefaults()
			_ = syscall.Kill(-rec.PGID, spec.StopSignal)
			if err := stopGroup(ctx, rec.PGID, spec.StopGrace); err != nil {
				return fmt.Errorf("stop the process group %d of %q: %w", rec.PGID, rec.Application, err)
			}
		case pidGone:
			killGroup(rec.PGID) // the pid is free: only leftovers of the group can hold it
		}
		if rec.HealthSocket != "" {
			_ = os.Remove(rec.HealthSocket)
		}
	}
	return os.Remove(path)
}

// adopt supervises rec's running process.
func (s *Supervisor) adopt(rec record) error {
	pidfd, err := unix.PidfdOpen(rec.PID, 0)
	if err != nil {
		return fmt.Errorf("pidfd_open: %w", err)
	}
	if rec.liveness() != pidAlive { // the pid changed hands before the pidfd was open
		_ = unix.Close(pidfd)
		return errors.New("the process is gone")
	}
	spec := rec.Spec.withDefaults()
	var ss *sockets
	if len(spec.Listen) > 0 {
		ss = &sockets{listen: spec.Listen, addrs: rec.Addrs}
		if files, err := takeSockets(pidfd, rec); err != nil {
			ss.lost = err
			s.cfg.Log.Warn("the listening sockets of an adopted app were not recovered: its next deployment restarts it without overlap",
				logging.KeyApplication, rec.Application, "pid", rec.PID, "error", err)
		} else {
			ss.files = files
		}
	}
	r := &running{pid: rec.PID, pgid: rec.PGID, exited: make(chan struct{}), start: time.Now(), health: rec.HealthSocket}
	p := s.newProc(spec)
	p.adopted = true
	p.pid, p.pgid, p.health = r.pid, r.pgid, r.health
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.procs[spec.Application] != nil || s.detached {
		_ = unix.Close(pidfd)
		ss.close()
		return errors.New("the app is supervised already")
	}
	if ss != nil {
		s.sockets[spec.Application] = ss
	}
	s.procs[spec.Application] = p
	go watchPidfd(pidfd, r)
	go p.loop(r)
	p.log.Info("app process adopted", "pid", rec.PID, "sockets", ss != nil && ss.lost == nil)
	return nil
}

// takeSockets takes copies of rec's listening sockets from its process:
// the fd holding each recorded socket inode (fd 3+i when none is
// recorded), checked to be a listener bound to the recorded address.
func takeSockets(pidfd int, rec record) ([]*os.File, error) {
	byInode := map[uint64]int{}
	fdDir := filepath.Join("/proc", strconv.Itoa(rec.PID), "fd")
	if ents, err := os.ReadDir(fdDir); err == nil {
		for _, e := range ents {
			link, _ := os.Readlink(filepath.Join(fdDir, e.Name()))
			ino, ok := strings.CutPrefix(link, "socket:[")
			n, err := strconv.ParseUint(strings.TrimSuffix(ino, "]"), 10, 64)
			fd, ferr := strconv.Atoi(e.Name())
			if ok && err == nil && ferr == nil {
				byInode[n] = fd
			}
		}
	}
	var files []*os.File
	fail := func(err error) ([]*os.File, error) {
		for _, f := range files {
			_ = f.Close()
		}
		return nil, err
	}
	for i, l := range rec.Spec.Listen {
		target := 3 + i
		if i < len(rec.Inodes) {
			fd, ok := byInode[rec.Inodes[i]]
			if !ok {
				return fail(fmt.Errorf("%s: the process no longer holds the socket", l))
			}
			target = fd
		}
		fd, err := unix.PidfdGetfd(pidfd, target, 0)
		if err != nil {
			return fail(fmt.Errorf("%s: pidfd_getfd of its fd %d: %w (the agent needs the app's user or root, and ptrace permission: kernel.yama.ptrace_scope)", l, target, err))
		}
		f := os.NewFile(uintptr(fd), l.String())
		files = append(files, f)
		if i >= len(rec.Addrs) {
			return fail(fmt.Errorf("%s: its address is not recorded", l))
		}
		if err := isListener(fd, l.Network, rec.Addrs[i]); err != nil {
			return fail(fmt.Errorf("%s: fd %d of the process: %w", l, target, err))
		}
	}
	return files, nil
}

// watchPidfd marks r exited when the process of pidfd ends (a process
// that is not the agent's child cannot be waited for).
func watchPidfd(pidfd int, r *running) {
	defer func() { _ = unix.Close(pidfd) }()
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, -1)
		if err == nil && n > 0 {
			break
		}
		if err != nil && !errors.Is(err, unix.EINTR) {
			// Cannot happen with a valid pidfd; watch the slow way.
			for syscall.Kill(r.pid, 0) == nil {
				time.Sleep(time.Second)
			}
			break
		}
	}
	r.err = errors.New("the adopted process exited (its exit status is not known to the agent)")
	r.exit()
}

// Detach stops supervising: every app process is left running, with its
// record in RunDir, for the next agent to Adopt; the agent's copies of the
// listening sockets are closed (the processes hold theirs). It waits for
// the processes already asked to stop (each within its grace period). The
// Supervisor starts nothing afterwards.
func (s *Supervisor) Detach() {
	s.mu.Lock()
	s.detached = true
	var leave, stopping []*proc
	for _, p := range s.procs {
		leave = append(leave, p)
	}
	for _, h := range s.overlaps {
		leave = append(leave, h.new)
	}
	for _, ps := range s.stopping {
		stopping = append(stopping, ps...)
	}
	s.mu.Unlock()
	for _, p := range leave {
		close(p.detach)
	}
	for _, p := range append(leave, stopping...) {
		<-p.done
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for app, ss := range s.sockets {
		ss.close()
		delete(s.sockets, app)
	}
	clear(s.procs)
	clear(s.overlaps)
	clear(s.stopping)
}
