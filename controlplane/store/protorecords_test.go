package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cutover-dev/cutover/controlplane/audit"
	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/auditlog"
	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/manifest"
)

// schema5Copy copies testdata/schema5/controller.db (written by commit
// 0e8265e: JSON values) into a new data dir.
func schema5Copy(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "schema5", FileName))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, FileName), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// dump returns every key and value of the file, bucket paths included.
func dump(t *testing.T, s *Store) map[string]string {
	t.Helper()
	out := map[string]string{}
	var walk func(path string, b *bolt.Bucket) error
	walk = func(path string, b *bolt.Bucket) error {
		out[path+"/#seq"] = string(u64(b.Sequence()))
		return b.ForEach(func(k, v []byte) error {
			if v == nil {
				return walk(path+"/"+string(k), b.Bucket(k))
			}
			out[path+"/"+string(k)] = string(v)
			return nil
		})
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error { return walk(string(name), b) })
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMigrateSchema5Fixture opens a data dir written by the controller of
// schema 5 (testdata/schema5/README.md): every record reads back as the
// fixture program wrote it, the audit chain still verifies, the old
// buckets are gone, and opening it again changes nothing.
func TestMigrateSchema5Fixture(t *testing.T) {
	for _, tc := range []struct {
		name  string
		batch int
		crash bool // one batch of the prepare step ran before a crash
	}{
		{name: "in one batch", batch: 5000},
		{name: "in batches of 2 records", batch: 2},
		{name: "after a crash in the middle of the copy", batch: 5000, crash: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func(n int) { protoBatch = n }(protoBatch)
			protoBatch = tc.batch
			dir := schema5Copy(t)
			if tc.crash {
				db, err := bolt.Open(filepath.Join(dir, FileName), 0o600, nil)
				if err != nil {
					t.Fatal(err)
				}
				err = db.Update(func(btx *bolt.Tx) error { _, err := copyProtoBatch(btx, 3); return err })
				if cerr := db.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if !tc.crash {
				checkSchema(t, dir, 5)
			}
			s := open(t, dir)
			checkFixture(t, s)
			before := dump(t, s)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = open(t, dir)
			defer s.Close()
			if after := dump(t, s); !reflect.DeepEqual(after, before) {
				t.Error("opening the migrated file again changed it")
			}
			checkFixture(t, s)
		})
	}
}

func checkFixture(t *testing.T, s *Store) {
	t.Helper()
	err := s.ViewBolt(func(tx *Tx) error {
		if v := tx.SchemaVersion(); v != SchemaVersion || v != 6 {
			t.Errorf("schema version = %d, want 6 (and SchemaVersion %d)", v, SchemaVersion)
		}
		if m := tx.AppliedMigrations(); !slices.Contains(m, "0006_protobuf_records") {
			t.Errorf("applied migrations = %v", m)
		}
		for _, b := range [][]byte{bucketDeployments, bucketAudit} {
			if tx.tx.Bucket(b) != nil {
				t.Errorf("bucket %s of schema 5 is still there", b)
			}
		}
		check := func(what string, got, want any, err error) {
			t.Helper()
			if err != nil {
				t.Errorf("%s: %v", what, err)
			} else if !reflect.DeepEqual(got, want) {
				t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
			}
		}
		envs, err := tx.Environments()
		check("environments", envs, fxEnvs, err)
		apps, err := tx.Applications()
		check("applications", apps, fxApps, err)
		for _, r := range fxReleases {
			got, err := tx.Release(r.ID)
			check("release "+r.ID, got, r, err)
			m, err := tx.Manifest(r.ID)
			check("manifest "+r.ID, m, fxManifests[r.ID], err)
		}
		rs, err := tx.ReleasesOf("hello")
		check("releases of hello", rs, []*model.Release{fxReleases[1], fxReleases[0]}, err)
		// A whole read counts the agents (Tally), which schema 5 did not keep.
		for _, d := range fxDeployments {
			got, err := tx.Deployment(d.ID)
			check("deployment "+d.ID, got, tallied(d), err)
			var tally *model.AgentTally
			h, err := tx.DeploymentHeader(d.ID) // the migration's whole write stored the tally
			if err == nil {
				tally = h.Tally
			}
			check("tally in the header of "+d.ID, tally, model.TallyAgents(d.Agents), err)
		}
		ds, err := tx.Deployments("")
		var want []*model.Deployment
		for _, d := range slices.Backward(fxDeployments) {
			want = append(want, tallied(d))
		}
		check("deployments", ds, want, err)
		ds, err = tx.Deployments("staging")
		check("deployments of staging", ds, []*model.Deployment{tallied(fxDeployments[4]), tallied(fxDeployments[2])}, err)
		plan, err := tx.SQLPlan("d-1")
		check("SQL plan", plan, fxPlan, err)
		agents, err := tx.Agents()
		check("agents", agents, fxAgents, err)
		tokens, err := tx.OperatorTokens()
		check("operator tokens", tokens, fxTokens, err)
		for _, jt := range fxJoinTokens {
			got, err := tx.JoinToken(jt.ID)
			check("join token "+jt.ID, got, jt, err)
		}
		ens, err := tx.Enrollments()
		check("enrollments", ens, fxEnrollments, err)
		chunk, err := tx.Chunk(manifest.HashChunk(fxChunk))
		check("chunk", chunk, fxChunk, err)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	log := audit.New(audit.Config{Store: s})
	if err := log.Verify(context.Background()); err != nil {
		t.Errorf("audit chain after the migration: %v", err)
	}
	es, err := log.List(context.Background(), audit.Filter{})
	if err != nil || len(es) != len(fxAudit) {
		t.Fatalf("audit entries = %d, %v; want %d", len(es), err, len(fxAudit))
	}
	for i, e := range es {
		f := fxAudit[i]
		want := auditlog.Entry{Seq: uint64(i) + 1, Time: fxAt(time.Duration(i) * time.Minute), Subject: f.Subject, Roles: f.Roles,
			Method: f.Method, Environment: f.Environment, Deployment: f.Deployment, Summary: f.Summary, Code: f.Code,
			Reason: f.Reason, PrevHash: e.PrevHash, Hash: e.Hash}
		if !reflect.DeepEqual(e, want) || (i > 0 && e.PrevHash != es[i-1].Hash) {
			t.Errorf("audit entry %d:\n got %+v\nwant %+v", i+1, e, want)
		}
	}
}

// TestNextDeploymentIDAfterMigration: ids go on from the last id of
// schema 5 (the sequence moved to deployment_records).
func TestNextDeploymentIDAfterMigration(t *testing.T) {
	s := open(t, schema5Copy(t))
	defer s.Close()
	var id string
	err := s.Update(func(tx model.Tx) error {
		var err error
		id, err = tx.NextDeploymentID()
		return err
	})
	if err != nil || id != "d-6" {
		t.Errorf("NextDeploymentID = %q, %v; want d-6", id, err)
	}
}

// checkSchema fails t unless the file in dir has schema version want.
func checkSchema(t *testing.T, dir string, want uint64) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, FileName), 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_ = db.View(func(btx *bolt.Tx) error {
		if v := (&Tx{tx: btx}).SchemaVersion(); v != want {
			t.Errorf("schema version = %d, want %d", v, want)
		}
		return nil
	})
}

// BenchmarkMigrate0006: how long the first start after the upgrade takes
// on a data dir of schema 5 with 100 deployments of 1,000 agents and
// 100,000 audit entries (one op: copy the file, open it).
func BenchmarkMigrate0006(b *testing.B) {
	src := b.TempDir()
	db, err := bolt.Open(filepath.Join(src, FileName), 0o600, &bolt.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	err = runMigrations(db, migrations[:5], time.Now())
	for i := range 100 {
		if err != nil {
			break
		}
		err = db.Update(func(tx *bolt.Tx) error {
			d := benchFleet(1000)
			d.ID = fmt.Sprint("d-", i+1)
			if _, err := tx.Bucket(bucketDeployments).NextSequence(); err != nil {
				return err
			}
			if err := putSchema5(tx, bucketDeployments, u64(uint64(i+1)), d); err != nil {
				return err
			}
			for j := range 1000 {
				seq := uint64(i*1000 + j + 1)
				r := &model.AuditRecord{Seq: seq, Time: time.Unix(int64(seq), 0).UTC(), Subject: "alice", Roles: []string{"deployer"},
					Method: "/cutover.v1.AdminService/GetDeployment", Deployment: d.ID, Code: "OK", PrevHash: "p", Hash: "h"}
				if err := putSchema5(tx, bucketAudit, u64(seq), r); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		b.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(src, FileName))
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		dir := b.TempDir()
		if err := os.WriteFile(filepath.Join(dir, FileName), raw, 0o600); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		s, err := Open(dir)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		st, _ := os.Stat(filepath.Join(dir, FileName))
		b.ReportMetric(float64(st.Size())/(1<<20), "schema6-MiB")
		_ = s.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(len(raw))/(1<<20), "schema5-MiB")
}

// TestMigrate0006RefusesMisfiledDeployment: a deployment whose id does not
// match its key stops the migration (DataLoss) instead of being copied
// elsewhere, and the file stays at schema 5.
func TestMigrate0006RefusesMisfiledDeployment(t *testing.T) {
	dir := t.TempDir()
	oldFile(t, dir, 5, func(db *bolt.DB) error {
		return db.Update(func(tx *bolt.Tx) error {
			return putSchema5(tx, bucketDeployments, u64(1), &model.Deployment{ID: "d-2", State: model.Planned})
		})
	})
	if _, err := Open(dir); !errors.Is(err, errkind.DataLoss) {
		t.Fatalf("Open: err = %v, want DataLoss", err)
	}
	checkSchema(t, dir, 5)
}
