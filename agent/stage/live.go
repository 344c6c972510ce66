package stage

import (
	"context"
	"os"
	"sync"
	"time"

	"github.com/cutover-dev/cutover/pkg/manifest"
)

// What a stage under way has written is served to peers at once, before
// its commit (fsync, then record): a chunk is verified against its id
// before it is written, so the bytes a peer reads back are those that
// verified, and the peer verifies them again when they arrive. A crash
// loses what was not committed, here as for this agent; no peer depends
// on it: a peer whose fetch breaks asks someone else.

// live keeps where the chunks written so far of the releases being staged
// are (their place in the staging files), and wakes those who wait for
// chunks after each written message (notify).
type live struct {
	mu       sync.Mutex
	releases map[string]map[manifest.ChunkID]location // release id → written chunks
	// log lists the chunks written since the epoch began, in order, so
	// that a waiter looks only at what is new; it restarts (epoch+1)
	// when no stage is under way, and when a stage ends (its chunks move
	// to where its records say).
	log     []manifest.ChunkID
	epoch   uint64
	changed chan struct{} // closed and replaced by notify
	news    bool          // written since the last notify
}

func newLive() *live {
	return &live{releases: map[string]map[manifest.ChunkID]location{}, changed: make(chan struct{})}
}

// begin records that release id is being staged; end forgets it.
func (l *live) begin(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.releases[id] = map[manifest.ChunkID]location{}
}

func (l *live) end(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.releases, id)
	l.log, l.epoch = nil, l.epoch+1
	l.wakeLocked()
}

// wrote records that chunk c of release id is written, verified, at loc.
func (l *live) wrote(id string, c manifest.ChunkID, loc location) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if w := l.releases[id]; w != nil {
		w[c] = loc
		l.log = append(l.log, c)
		l.news = true
	}
}

// notify wakes the waiters if chunks were written since the last time.
func (l *live) notify() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.news {
		l.wakeLocked()
	}
}

func (l *live) wakeLocked() {
	l.news = false
	close(l.changed)
	l.changed = make(chan struct{})
}

// where returns where chunk c was written by a stage under way.
func (l *live) where(c manifest.ChunkID) (location, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, w := range l.releases {
		if loc, ok := w[c]; ok {
			return loc, true
		}
	}
	return location{}, false
}

// cursor is a waiter's place in the log.
type cursor struct {
	epoch uint64
	next  int
}

// since returns the chunks written since c (all: nil, true when the epoch
// changed), moves c to now, and returns the channel closed at the next
// notify.
func (l *live) since(c *cursor) (news []manifest.ChunkID, all bool, changed <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.epoch != l.epoch {
		all = true
	} else {
		news = append(news, l.log[c.next:]...)
	}
	c.epoch, c.next = l.epoch, len(l.log)
	return news, all, l.changed
}

// ServeHeld hands fn, in the order of ids, the chunks this agent holds
// intact (in its staged releases, or already written by a stage under way,
// committed or not), each with a copy of its content, which fn may keep. A
// chunk it does not hold, or whose places on disk all fail their hash
// (damaged, changed or gone since they were recorded), is left out: the
// caller gets it elsewhere. It is what the agent serves to its peers
// (agent/peer). Then, as stages write them, those of the rest for
// which wait is true (nil: none), until each of them is handed on or ctx
// ends (ctx's error). Whoever passes wait must know that the chunks will
// come: this agent is staging them, or was told to. idle, if set, is
// called before each wait and every IdleEvery while it waits (the caller
// sends what it batched, or says it is still there). fn's and idle's
// errors end it.
func (s *Stager) ServeHeld(ctx context.Context, ids []manifest.ChunkID, wait func(manifest.ChunkID) bool, fn func(id manifest.ChunkID, data []byte) error, idle func() error) error {
	var cur cursor
	s.live.since(&cur)
	want := make(map[manifest.ChunkID]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	x, err := localIndex(s.cfg.Store, s.decoded, s.cfg.Root, func(id manifest.ChunkID) bool { return want[id] })
	if err != nil {
		return err
	}
	files := map[string]*os.File{}
	defer func() {
		for _, f := range files {
			_ = f.Close()
		}
	}()
	// serve hands on id if it is found intact, and says whether it was.
	// A chunk a stage under way wrote a moment ago is read back without
	// hashing it again: it was verified before it was written, and the
	// peer verifies what it gets; the committed ones are hashed, since
	// a disk may have damaged them since.
	serve := func(id manifest.ChunkID) (bool, error) {
		if l, ok := s.live.where(id); ok {
			if data, ok := readChunk(files, l); ok {
				return true, fn(id, data)
			}
		}
		for _, l := range x[id] {
			if data, ok := readIntact(files, l, id); ok {
				return true, fn(id, data)
			}
		}
		return false, nil
	}
	pending := map[manifest.ChunkID]bool{}
	for _, id := range ids {
		if !want[id] {
			continue // asked twice: sent once
		}
		delete(want, id)
		ok, err := serve(id)
		if err != nil {
			return err
		}
		if !ok && wait != nil && wait(id) {
			pending[id] = true
		}
	}
	for len(pending) > 0 {
		news, all, changed := s.live.since(&cur)
		if all { // a stage ended: what it wrote is where its records say
			if x, err = localIndex(s.cfg.Store, s.decoded, s.cfg.Root, func(id manifest.ChunkID) bool { return pending[id] }); err != nil {
				return err
			}
			for id := range pending {
				news = append(news, id)
			}
		}
		for _, id := range news {
			if !pending[id] {
				continue
			}
			ok, err := serve(id)
			if err != nil {
				return err
			}
			if ok {
				delete(pending, id)
			}
		}
		if len(pending) == 0 {
			break
		}
		if idle != nil {
			if err := idle(); err != nil {
				return err
			}
		}
		if err := s.waitChange(ctx, changed, idle); err != nil {
			return err
		}
	}
	return nil
}

// IdleEvery is how often ServeHeld calls idle while it waits.
const IdleEvery = 2 * time.Second

// waitChange waits until changed is closed, calling idle every IdleEvery.
func (s *Stager) waitChange(ctx context.Context, changed <-chan struct{}, idle func() error) error {
	t := time.NewTicker(IdleEvery)
	defer t.Stop()
	for {
		select {
		case <-changed:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			if idle != nil {
				if err := idle(); err != nil {
					return err
				}
			}
		}
	}
}
