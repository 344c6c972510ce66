package controlplane

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/cutover-dev/cutover/controlplane/etcdstore"
	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/controlplane/store"
	"github.com/cutover-dev/cutover/controlplane/storecopy"
)

// The values of Config.Store.
const (
	StoreBolt = "bbolt"
	StoreEtcd = "etcd"
)

// EtcdConfig says how the controller reaches etcd (Config.Store "etcd").
type EtcdConfig struct {
	// Endpoints are the members' client URLs (http:// or https://).
	Endpoints []string
	// Prefix is where the records live (default etcdstore.DefaultPrefix).
	Prefix string
	// CAFile verifies the members' certificates; CertFile and KeyFile are
	// the controller's client certificate, for members that ask for one.
	CAFile, CertFile, KeyFile string
	// Username and PasswordFile log in to etcd's auth; the password is
	// only ever read from the file, never logged.
	Username, PasswordFile string
	// DialTimeout bounds the first connection (default 10 s).
	DialTimeout time.Duration
	// Import copies the records of the data dir's controller.db (a
	// controller that ran alone on bbolt) into etcd at start, unless etcd
	// holds a controller's records already (storecopy).
	Import bool
}

// CheckStore checks the store settings of cfg that go together, before
// anything is opened: the one place both the flags (cutover-controller
// exits 2) and New check them.
func (cfg Config) CheckStore() error {
	switch {
	case cfg.Store != "" && cfg.Store != StoreBolt && cfg.Store != StoreEtcd:
		return fmt.Errorf("--store %q: want %s or %s", cfg.Store, StoreBolt, StoreEtcd)
	case cfg.Store == StoreEtcd && len(cfg.Etcd.Endpoints) == 0:
		return errors.New("--store etcd needs --etcd-endpoints")
	case (cfg.Etcd.CertFile == "") != (cfg.Etcd.KeyFile == ""):
		return errors.New("--etcd-cert-file and --etcd-key-file go together")
	case (cfg.Etcd.Username == "") != (cfg.Etcd.PasswordFile == ""):
		return errors.New("--etcd-username and --etcd-password-file go together")
	}
	return nil
}

// openStore opens the bbolt file (the whole store, or only the chunks on
// etcd) and, on etcd, the etcd store. It sets c.bolt, c.store, c.etcd.
func (c *Controller) openStore(cfg Config) (err error) {
	if err := cfg.CheckStore(); err != nil {
		return err
	}
	if c.bolt, err = store.Open(cfg.DataDir); err != nil {
		return err
	}
	if cfg.Store != StoreEtcd {
		c.store = c.bolt
		return nil
	}
	if c.etcd, err = etcdClient(cfg.Etcd); err != nil {
		return err
	}
	es, err := etcdstore.New(etcdstore.Config{Client: c.etcd, Prefix: cfg.Etcd.Prefix, Chunks: c.bolt})
	if err != nil {
		return err
	}
	c.etcdStore, c.store = es, es
	c.log.Info("records in etcd; release chunks in "+store.FileName, "etcd_endpoints", strings.Join(cfg.Etcd.Endpoints, ","), "etcd_prefix", cfg.Etcd.Prefix)
	if cfg.Etcd.Import {
		return c.importRecords()
	}
	return nil
}

// importRecords copies the records of controller.db into etcd, once: not
// when etcd holds a controller's records already, nor when controller.db
// holds none. The records stay in controller.db, unused from then on.
func (c *Controller) importRecords() error {
	switch used, err := storecopy.InUse(c.etcdStore); {
	case err != nil:
		return fmt.Errorf("--etcd-import: %w", err)
	case used:
		c.log.Info("--etcd-import: etcd holds a controller's records already; nothing imported")
		return nil
	}
	switch used, err := storecopy.InUse(c.bolt); {
	case err != nil:
		return fmt.Errorf("--etcd-import: %w", err)
	case !used:
		c.log.Info("--etcd-import: " + store.FileName + " holds no records; nothing imported")
		return nil
	}
	c.log.Info("--etcd-import: copying the records of " + store.FileName + " into etcd")
	n, err := storecopy.Copy(c.bolt, c.etcdStore)
	if err != nil {
		return fmt.Errorf("--etcd-import: %w (what was copied is written again at the next start with --etcd-import)", err)
	}
	c.log.Info("--etcd-import: the records of "+store.FileName+" are in etcd; from now on they are read there (join tokens are not copied: create new ones)", "copied", n.String())
	return nil
}

// etcdClient connects to etcd with cfg's TLS and credentials.
func etcdClient(cfg EtcdConfig) (*clientv3.Client, error) {
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 10 * time.Second
	}
	cc := clientv3.Config{Endpoints: cfg.Endpoints, DialTimeout: cfg.DialTimeout, Username: cfg.Username, Logger: zap.NewNop()}
	if cfg.PasswordFile != "" {
		b, err := os.ReadFile(cfg.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("--etcd-password-file: %w", err)
		}
		cc.Password = strings.TrimRight(string(b), "\r\n")
	}
	if cfg.CAFile != "" || cfg.CertFile != "" {
		t, err := etcdTLS(cfg)
		if err != nil {
			return nil, err
		}
		cc.TLS = t
	}
	cli, err := clientv3.New(cc)
	if err != nil {
		return nil, fmt.Errorf("connect to etcd at %s: %w", strings.Join(cfg.Endpoints, ","), err)
	}
	return cli, nil
}

// etcdTLS is the client TLS configuration of cfg's files.
func etcdTLS(cfg EtcdConfig) (*tls.Config, error) {
	t := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("--etcd-ca-file: %w", err)
		}
		t.RootCAs = x509.NewCertPool()
		if !t.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--etcd-ca-file %s holds no PEM certificate", cfg.CAFile)
		}
	}
	if cfg.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("--etcd-cert-file/--etcd-key-file: %w", err)
		}
		t.Certificates = []tls.Certificate{cert}
	}
	return t, nil
}

// closeStore closes the etcd store and client, then the bbolt file.
func (c *Controller) closeStore() {
	if c.etcdStore != nil {
		_ = c.etcdStore.Close()
	}
	if c.etcd != nil {
		_ = c.etcd.Close()
	}
	if c.bolt != nil {
		if err := c.bolt.Close(); err != nil {
			c.log.Error("close store", "err", err)
		}
	}
}

var _ model.Store = (*etcdstore.Store)(nil)

// collectGarbage deletes the releases and chunks nothing needs, from the
// store the records are in.
func (c *Controller) collectGarbage() (store.Collected, error) {
	if c.etcdStore != nil {
		return c.etcdStore.CollectGarbage(c.cfg.KeepReleases, c.bolt)
	}
	return c.bolt.CollectGarbage(c.cfg.KeepReleases)
}
