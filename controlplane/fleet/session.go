package fleet

import (
	"context"
	"sync"

	"github.com/cutover-dev/cutover/controlplane/model"
)

// Session is one open connection of an agent. Commands queued on it are
// returned by Next in order.
type Session struct {
	agent       model.Agent // guarded by the fleet's mutex
	peerAddress string      // from the hello; set once

	mu     sync.Mutex
	queue  []Command
	wake   chan struct{}
	done   chan struct{}
	closed bool
}

func newSession(a model.Agent) *Session {
	return &Session{agent: a, wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// Name returns the agent's name.
func (s *Session) Name() string { return s.agent.Name }

// Environment returns the agent's environment.
func (s *Session) Environment() string { return s.agent.Environment }

// Done is closed when the session ends (disconnect, replacement, shutdown).
func (s *Session) Done() <-chan struct{} { return s.done }

// Next returns the next queued command, waiting for one. It fails when ctx
// ends or the session is closed.
func (s *Session) Next(ctx context.Context) (Command, error) {
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return Command{}, errClosed
		}
		if len(s.queue) > 0 {
			c := s.queue[0]
			s.queue = s.queue[1:]
			s.mu.Unlock()
			return c, nil
		}
		s.mu.Unlock()
		select {
		case <-s.wake:
		case <-s.done:
		case <-ctx.Done():
			return Command{}, ctx.Err()
		}
	}
}

func (s *Session) push(c Command) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.queue = append(s.queue, c)
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Session) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.done)
	}
}
