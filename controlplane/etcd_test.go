package controlplane

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/controlplane/etcdstore"
	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/internal/etcdcluster"
	"github.com/cutover-dev/cutover/pkg/identity/identitytest"
)

// writeCert writes a CA certificate and its key (PEM) in dir.
func writeCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	ca := identitytest.NewCA(t, "etcd test")
	certFile, keyFile = filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	if err := os.WriteFile(certFile, ca.PEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, ca.KeyPEM(t), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestEtcdClientConfig: the etcd flags' files become the client's TLS
// configuration and password, or a readable error naming the flag.
func TestEtcdClientConfig(t *testing.T) {
	dir := t.TempDir()
	cert, key := writeCert(t, dir)
	garbage := filepath.Join(dir, "garbage")
	password := filepath.Join(dir, "password")
	for f, b := range map[string]string{garbage: "not a certificate", password: "s3cret\n"} {
		if err := os.WriteFile(f, []byte(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		cfg     EtcdConfig
		wantErr string
	}{
		{"CA file missing", EtcdConfig{Endpoints: []string{"https://x:2379"}, CAFile: filepath.Join(dir, "none")}, "--etcd-ca-file"},
		{"CA file not PEM", EtcdConfig{Endpoints: []string{"https://x:2379"}, CAFile: garbage}, "holds no PEM certificate"},
		{"key not matching", EtcdConfig{Endpoints: []string{"https://x:2379"}, CertFile: cert, KeyFile: garbage}, "--etcd-cert-file"},
		{"password file missing", EtcdConfig{Endpoints: []string{"http://x:2379"}, Username: "u", PasswordFile: filepath.Join(dir, "none")}, "--etcd-password-file"},
		{"TLS with a client certificate", EtcdConfig{Endpoints: []string{"https://x:2379"}, CAFile: cert, CertFile: cert, KeyFile: key}, ""},
		// With a user, the client logs in at once: an unreachable etcd fails the start.
		{"user and password, etcd unreachable", EtcdConfig{Endpoints: []string{"http://127.0.0.1:1"}, Username: "u", PasswordFile: password,
			DialTimeout: 300 * time.Millisecond}, "connect to etcd at http://127.0.0.1:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cli, err := etcdClient(tt.cfg)
			if cli != nil {
				defer cli.Close()
			}
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("got %v, want an error with %q", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "s3cret") {
				t.Error("the password is in the error")
			}
		})
	}
}

// TestCheckStore: the store settings that go together are checked before
// anything is opened, by New as by the flags.
func TestCheckStore(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"bbolt", Config{Store: StoreBolt}, ""},
		{"the default", Config{}, ""},
		{"another store", Config{Store: "zookeeper"}, `--store "zookeeper": want bbolt or etcd`},
		{"etcd without endpoints", Config{Store: StoreEtcd}, "--etcd-endpoints"},
		{"cert without key", Config{Store: StoreEtcd, Etcd: EtcdConfig{Endpoints: []string{"https://x:2379"}, CertFile: "c"}}, "--etcd-cert-file and --etcd-key-file go together"},
		{"user without password file", Config{Store: StoreEtcd, Etcd: EtcdConfig{Endpoints: []string{"https://x:2379"}, Username: "u"}}, "--etcd-username and --etcd-password-file go together"},
		{"etcd", Config{Store: StoreEtcd, Etcd: EtcdConfig{Endpoints: []string{"https://x:2379"}}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.CheckStore()
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("got %v, want an error with %q", err, tt.wantErr)
			}
		})
	}
	// New refuses them before it opens anything.
	dir := t.TempDir()
	if _, err := New(Config{DataDir: dir, Store: StoreEtcd}); err == nil || !strings.Contains(err.Error(), "--etcd-endpoints") {
		t.Fatalf("New with etcd and no endpoints: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("New refused its settings but wrote %d entries in the data dir", len(entries))
	}
}

// TestEtcdAuth: a controller logs in to an etcd with auth enabled with
// --etcd-username and the password from --etcd-password-file; a wrong
// password fails the start with an error that does not hold it.
func TestEtcdAuth(t *testing.T) {
	e := startEtcd1(t)
	ctx, cancel := context.WithTimeout(context.Background(), etcdcluster.StartTimeout)
	defer cancel()
	admin, err := etcdClient(EtcdConfig{Endpoints: e.Endpoints})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.UserAdd(ctx, "root", "r00t-secret"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.UserGrantRole(ctx, "root", "root"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.AuthEnable(ctx); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	right, wrong := filepath.Join(dir, "right"), filepath.Join(dir, "wrong")
	for f, b := range map[string]string{right: "r00t-secret\n", wrong: "not-it-either\n"} {
		if err := os.WriteFile(f, []byte(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name, file string
		ok         bool
	}{{"right password", right, true}, {"wrong password", wrong, false}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cli, err := etcdClient(EtcdConfig{Endpoints: e.Endpoints, Username: "root", PasswordFile: tt.file, DialTimeout: 5 * time.Second})
			if err == nil {
				defer cli.Close()
				s, serr := etcdstore.New(etcdstore.Config{Client: cli})
				if serr != nil {
					t.Fatal(serr)
				}
				err = s.Update(func(tx model.Tx) error { return tx.PutApplication(&model.Application{Name: "hello"}) })
			}
			if (err == nil) != tt.ok {
				t.Fatalf("got %v, want success %v", err, tt.ok)
			}
			if err != nil && strings.Contains(err.Error(), "not-it-either") {
				t.Errorf("the error holds the password: %v", err)
			}
		})
	}
}
