package migrate

import (
	"errors"
	"testing"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

// TestFenceRefusesAFormerLeader plays the paused leader: the plan of one
// deployment, run by the new leader (epoch 7), then by the old one (epoch
// 5) when it wakes up. The old one's run is refused before any statement,
// and the database is as the new leader left it.
func TestFenceRefusesAFormerLeader(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		db := be.fresh(t)
		p := generate(t, db, threeFiles(t))
		newLeader, oldLeader := db, db
		newLeader.Epoch, oldLeader.Epoch = 7, 5
		res, err := Resume(ctxT(t), newLeader, p)
		if err != nil || len(res.Applied) != 3 {
			t.Fatalf("the new leader's run: %+v, %v", res, err)
		}
		before := snapshot(t, db)
		res, err = Resume(ctxT(t), oldLeader, p)
		var nl *errkind.NotLeader
		if !errors.As(err, &nl) || len(res.Applied)+len(res.Skipped) != 0 {
			t.Fatalf("the former leader's run: %+v, %v; want refused as not the leader", res, err)
		}
		mentions(t, err, "epoch 7", "epoch 5", "no migration was run")
		unchanged(t, db, before, "a refused run changed the database")

		// The leader of the day, and a controller that is not elected (a
		// single controller on bbolt), run as before.
		for _, epoch := range []uint64{7, 0} {
			again := db
			again.Epoch = epoch
			if res, err := Resume(ctxT(t), again, p); err != nil || len(res.Skipped) != 3 {
				t.Errorf("epoch %d: %+v, %v; want the three groups skipped", epoch, res, err)
			}
		}
	})
}
