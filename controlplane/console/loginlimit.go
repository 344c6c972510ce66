package console

import (
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

// Failed logins are limited per client address: after loginFailures
// failures within loginWindow, POST /login answers 429 without looking at
// the token until the oldest of them is loginWindow old. A correct token
// does not lift the limit early: guessing is what it slows down.
const (
	loginFailures = 10
	loginWindow   = time.Minute
	// loginClients bounds the addresses remembered; past it, the
	// addresses with no recent failure are forgotten first, then all.
	loginClients = 10000
)

// errTooManyLogins is the refusal of a login from an address that failed
// too often: 429, RESOURCE_EXHAUSTED in the audit log.
var errTooManyLogins = fmt.Errorf("too many failed logins from this address: %w", errkind.ResourceExhausted)

// loginLimiter remembers the recent failed logins of each client address.
type loginLimiter struct {
	clock func() time.Time

	mu       sync.Mutex
	failures map[string][]time.Time // oldest first, within loginWindow
}

func newLoginLimiter(clock func() time.Time) *loginLimiter {
	return &loginLimiter{clock: clock, failures: map[string][]time.Time{}}
}

// clientAddr is the address a request comes from: the connection's peer
// (no forwarding header is trusted; the console is served directly).
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// recent returns addr's failures within the window at now; mu held.
func (l *loginLimiter) recent(addr string, now time.Time) []time.Time {
	fs := l.failures[addr]
	i := 0
	for i < len(fs) && !now.Before(fs[i].Add(loginWindow)) {
		i++
	}
	fs = fs[i:]
	if len(fs) == 0 {
		delete(l.failures, addr)
		return nil
	}
	l.failures[addr] = fs
	return fs
}

// blocked says whether addr failed too often to try again now, and when
// it may.
func (l *loginLimiter) blocked(addr string) (bool, time.Duration) {
	now := l.clock()
	l.mu.Lock()
	defer l.mu.Unlock()
	fs := l.recent(addr, now)
	if len(fs) < loginFailures {
		return false, 0
	}
	return true, fs[len(fs)-loginFailures].Add(loginWindow).Sub(now)
}

// failed records a failed login from addr.
func (l *loginLimiter) failed(addr string) {
	now := l.clock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, known := l.failures[addr]; !known && len(l.failures) >= loginClients {
		for a := range l.failures {
			l.recent(a, now)
		}
		if len(l.failures) >= loginClients {
			clear(l.failures)
		}
	}
	fs := append(l.recent(addr, now), now)
	if len(fs) > loginFailures {
		fs = fs[len(fs)-loginFailures:]
	}
	l.failures[addr] = fs
}
