package controlplane

import (
	"testing"

	"github.com/cutover-dev/cutover/controlplane/model"
)

// TestEtcdImport: a controller that ran alone on bbolt is started on etcd
// with --etcd-import on the same data dir: its records are in etcd (an
// environment it had, its bootstrap token); started so again, it imports
// nothing and keeps what etcd holds.
func TestEtcdImport(t *testing.T) {
	e := startEtcd1(t)
	dir := t.TempDir()
	alone, err := New(Config{DataDir: dir, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := alone.store.Update(func(tx model.Tx) error {
		return tx.PutEnvironment(&model.Environment{Name: "production", TwoStage: true})
	}); err != nil {
		t.Fatal(err)
	}
	var tokens []*model.OperatorToken
	if err := alone.store.View(func(tx model.Tx) (err error) { tokens, err = tx.OperatorTokens(); return err }); err != nil || len(tokens) != 1 {
		t.Fatalf("the bbolt controller's tokens: %d (%v), want its bootstrap token", len(tokens), err)
	}
	alone.close()

	etcdCfg := Config{DataDir: dir, Listen: "127.0.0.1:0", Store: StoreEtcd,
		Etcd: EtcdConfig{Endpoints: e.Endpoints, Prefix: "/import/", Import: true}}
	for start, want := range []bool{true, false} {
		c, err := New(etcdCfg)
		if err != nil {
			t.Fatalf("start %d on etcd with --etcd-import: %v", start+1, err)
		}
		var env *model.Environment
		var got []*model.OperatorToken
		err = c.etcdStore.Update(func(tx model.Tx) error {
			var err error
			if env, err = tx.Environment("production"); err != nil {
				return err
			}
			if got, err = tx.OperatorTokens(); err != nil {
				return err
			}
			changed := *env
			changed.TwoStage = false // changed in etcd: a second import would undo it
			return tx.PutEnvironment(&changed)
		})
		c.close()
		if err != nil || env.TwoStage != want {
			t.Fatalf("start %d: the environment in etcd: %+v, %v; want two_stage %v", start+1, env, err, want)
		}
		if len(got) != 1 || got[0].ID != tokens[0].ID || got[0].Hash != tokens[0].Hash {
			t.Fatalf("start %d: the tokens in etcd: %d, want the bootstrap token of the bbolt controller", start+1, len(got))
		}
	}
}
