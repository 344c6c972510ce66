package store

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/manifest"
)

func open(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// oldFile writes in dir the file that a controller knowing only the first
// n migrations would have left, runs seed on it (opened with bbolt: the
// store would migrate it), and closes it; the next Open migrates it, as
// the test of a migration needs.
func oldFile(t *testing.T, dir string, n int, seed func(db *bolt.DB) error) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = runMigrations(db, migrations[:n], time.Now())
	if err == nil {
		err = seed(db)
	}
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
}

// putSchema5 writes v as schemas 1 to 5 did: its JSON, under key.
func putSchema5(tx *bolt.Tx, bucket, key []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return tx.Bucket(bucket).Put(key, raw)
}

func TestReopenKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s := open(t, dir)
	chunk := manifest.Chunk{ID: manifest.HashChunk([]byte("hello")), Data: []byte("hello")}
	if err := s.PutChunks([]manifest.Chunk{chunk, chunk}); err != nil {
		t.Fatal(err)
	}
	var id1, id2 string
	err := s.update(func(tx *Tx) error {
		if err := tx.PutEnvironment(&model.Environment{Name: "production", TwoStage: true, PreparedTTL: time.Hour, CreateTime: now}); err != nil {
			return err
		}
		if err := tx.PutApplication(&model.Application{Name: "hello", SourceDir: "/src/hello", CreateTime: now}); err != nil {
			return err
		}
		if err := tx.PutRelease(&model.Release{ID: "r1", Application: "hello", CreateTime: now}, []byte("m1")); err != nil {
			return err
		}
		if err := tx.PutRelease(&model.Release{ID: "r2", Application: "hello", CreateTime: now.Add(time.Minute)}, []byte("m2")); err != nil {
			return err
		}
		var err error
		if id1, err = tx.NextDeploymentID(); err != nil {
			return err
		}
		if id2, err = tx.NextDeploymentID(); err != nil {
			return err
		}
		for _, id := range []string{id1, id2} {
			d := &model.Deployment{ID: id, Environment: "production", State: model.Prepared,
				History: []model.Transition{{State: model.Prepared, Time: now, Actor: "alice"}}}
			if err := tx.PutDeployment(d); err != nil {
				return err
			}
		}
		return tx.PutAgent(&model.Agent{Name: "fe1", Environment: "production", LastSeen: now,
			Applications: []model.AgentApplication{{Name: "hello", RunningReleaseID: "r1", StagedReleaseIDs: []string{"r2"}}}})
	})
	if err != nil {
		t.Fatal(err)
	}
	if id1 != "d-1" || id2 != "d-2" {
		t.Fatalf("ids = %s, %s; want d-1, d-2", id1, id2)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, dir)
	defer s.Close()
	err = s.view(func(tx *Tx) error {
		if v := tx.SchemaVersion(); v != SchemaVersion {
			t.Errorf("schema version = %d, want %d", v, SchemaVersion)
		}
		e, err := tx.Environment("production")
		if err != nil {
			return err
		}
		if !e.TwoStage || e.PreparedTTL != time.Hour || !e.CreateTime.Equal(now) {
			t.Errorf("environment = %+v", e)
		}
		rs, err := tx.ReleasesOf("hello")
		if err != nil {
			return err
		}
		if len(rs) != 2 || rs[0].ID != "r2" || rs[1].ID != "r1" {
			t.Errorf("releases newest first = %+v", rs)
		}
		m, err := tx.Manifest("r1")
		if err != nil || string(m) != "m1" {
			t.Errorf("manifest = %q, %v", m, err)
		}
		ds, err := tx.Deployments("production")
		if err != nil {
			return err
		}
		if len(ds) != 2 || ds[0].ID != "d-2" || ds[1].History[0].Actor != "alice" {
			t.Errorf("deployments = %+v", ds)
		}
		if ds, _ := tx.Deployments("staging"); len(ds) != 0 {
			t.Errorf("deployments of staging = %d, want 0", len(ds))
		}
		data, err := tx.Chunk(chunk.ID)
		if err != nil || string(data) != "hello" {
			t.Errorf("chunk = %q, %v", data, err)
		}
		a, err := tx.Agent("fe1")
		if err != nil {
			return err
		}
		if a.Applications[0].StagedReleaseIDs[0] != "r2" {
			t.Errorf("agent = %+v", a)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The sequence survives the reopen.
	_ = s.update(func(tx *Tx) error {
		id, err := tx.NextDeploymentID()
		if id != "d-3" || err != nil {
			t.Errorf("next id after reopen = %s, %v; want d-3", id, err)
		}
		return nil
	})
}

func TestNotFound(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	_ = s.view(func(tx *Tx) error {
		for name, get := range map[string]func() error{
			"environment": func() error { _, err := tx.Environment("nope"); return err },
			"application": func() error { _, err := tx.Application("nope"); return err },
			"release":     func() error { _, err := tx.Release("nope"); return err },
			"manifest":    func() error { _, err := tx.Manifest("nope"); return err },
			"deployment":  func() error { _, err := tx.Deployment("d-9"); return err },
			"bad id":      func() error { _, err := tx.Deployment("d-09"); return err },
			"agent":       func() error { _, err := tx.Agent("nope"); return err },
			"chunk":       func() error { _, err := tx.Chunk(manifest.ChunkID{}); return err },
		} {
			if err := get(); !errors.Is(err, errkind.NotFound) {
				t.Errorf("%s: err = %v, want NotFound", name, err)
			}
		}
		return nil
	})
}

func TestFailedUpdateChangesNothing(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	boom := errors.New("boom")
	err := s.update(func(tx *Tx) error {
		if err := tx.PutEnvironment(&model.Environment{Name: "production"}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	_ = s.view(func(tx *Tx) error {
		if _, err := tx.Environment("production"); !errors.Is(err, errkind.NotFound) {
			t.Errorf("environment written by a failed update: %v", err)
		}
		return nil
	})
}

func TestSecondOpenSaysInUse(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	defer s.Close()
	_, err := Open(dir)
	if err == nil || !strings.Contains(err.Error(), "in use by another process") || !errors.Is(err, errkind.FailedPrecondition) {
		t.Fatalf("second open: err = %v", err)
	}
}

func TestMigrationsRunOnceInOrder(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	var ran []string
	extra := append(append([]migration(nil), migrations...),
		migration{name: "9999_test", apply: func(tx *bolt.Tx) error {
			ran = append(ran, "9999")
			_, err := tx.CreateBucket([]byte("test"))
			return err
		}})
	for range 2 { // the second run must not apply 9999 again
		if err := runMigrations(s.db, extra, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if len(ran) != 1 {
		t.Fatalf("9999 ran %d times, want 1", len(ran))
	}
	_ = s.view(func(tx *Tx) error {
		if v := tx.SchemaVersion(); v != uint64(len(extra)) {
			t.Errorf("schema version = %d, want %d", v, len(extra))
		}
		if got := strings.Join(tx.AppliedMigrations(), ","); !strings.HasPrefix(got, "0001_create_buckets,") || !strings.HasSuffix(got, ",9999_test") || len(tx.AppliedMigrations()) != len(extra) {
			t.Errorf("applied = %s", got)
		}
		return nil
	})
	// A file newer than the code is refused.
	if err := runMigrations(s.db, migrations, time.Now()); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Errorf("older code on newer file: err = %v", err)
	}
	s.Close()
}

func TestTrustRecords(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	err := s.update(func(tx *Tx) error {
		if err := tx.PutOperatorToken(&model.OperatorToken{ID: "a1", Hash: "h", Subject: "alice", Role: "viewer", CreateTime: now}); err != nil {
			return err
		}
		if err := tx.PutJoinToken(&model.JoinToken{ID: "j1", Hash: "h", Environment: "production", Uses: 1, ExpireTime: now}); err != nil {
			return err
		}
		return tx.PutEnrollment(&model.Enrollment{Name: "fe-1", Environment: "production", Certs: []model.IssuedCert{{Serial: "01", NotAfter: now}}})
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = s.view(func(tx *Tx) error {
		if tok, err := tx.OperatorToken("a1"); err != nil || tok.Subject != "alice" || !tok.CreateTime.Equal(now) {
			t.Errorf("model.OperatorToken = %+v, %v", tok, err)
		}
		if _, err := tx.OperatorToken("nope"); !errors.Is(err, errkind.NotFound) {
			t.Errorf("unknown token: %v", err)
		}
		if j, err := tx.JoinToken("j1"); err != nil || j.Environment != "production" {
			t.Errorf("model.JoinToken = %+v, %v", j, err)
		}
		if e, err := tx.Enrollment("fe-1"); err != nil || len(e.Certs) != 1 {
			t.Errorf("model.Enrollment = %+v, %v", e, err)
		}
		if _, err := tx.Enrollment("fe-2"); !errors.Is(err, errkind.NotFound) {
			t.Errorf("unknown enrollment: %v", err)
		}
		return nil
	})
}
