package stage_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/agent/stage"
)

// stoppedClock is a clock that only sleeping advances.
type stoppedClock struct {
	mu    sync.Mutex
	t     time.Time
	slept time.Duration
}

func (c *stoppedClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *stoppedClock) sleep(_ context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t, c.slept = c.t.Add(d), c.slept+d
	return nil
}

// TestStageRateCap stages the sample release under a cap, on a clock that
// only the cap's waits advance: the stage takes at least its size over the
// smaller of the command's and the agent's caps (less the bucket's tenth
// of a second), and about that.
func TestStageRateCap(t *testing.T) {
	for _, tc := range []struct {
		name           string
		agentRate, cmd int64
		effective      int64
		uncapped       bool
	}{
		{name: "agent cap", agentRate: 200 << 10, effective: 200 << 10},
		{name: "command cap", cmd: 100 << 10, effective: 100 << 10},
		{name: "the smaller of both", agentRate: 400 << 10, cmd: 100 << 10, effective: 100 << 10},
		{name: "none", uncapped: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &stoppedClock{t: time.Unix(1e9, 0)}
			e := newEnv(t, func(cfg *stage.Config) { cfg.Rate, cfg.Clock, cfg.Sleep = tc.agentRate, c.now, c.sleep })
			id, _, m := e.fake.release(t, sampleFiles)
			if _, err := e.st.Stage(context.Background(), []stage.Release{{Application: "hello", ID: id}}, tc.cmd, nil); err != nil {
				t.Fatal(err)
			}
			if tc.uncapped {
				if c.slept != 0 {
					t.Errorf("stage without a cap slept %v", c.slept)
				}
				return
			}
			least := time.Duration(float64(m.Size())/float64(tc.effective)*float64(time.Second)) - 100*time.Millisecond
			most := time.Duration(float64(m.Size())/float64(tc.effective)*float64(time.Second)) + 10*time.Millisecond
			if c.slept < least || c.slept > most {
				t.Errorf("staging %d bytes at %d B/s slept %v, want between %v and %v", m.Size(), tc.effective, c.slept, least, most)
			}
		})
	}
}
