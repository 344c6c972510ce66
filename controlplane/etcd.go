package controlplane

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/cutover-dev/cutover/controlplane/etcdstore"
	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/controlplane/pki"
	"github.com/cutover-dev/cutover/controlplane/store"
	"github.com/cutover-dev/cutover/pkg/atomicfile"
	"github.com/cutover-dev/cutover/pkg/errkind"
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
}

// openStore opens the bbolt file (the whole store, or only the chunks on
// etcd) and, on etcd, the etcd store. It sets c.bolt, c.store, c.etcd.
func (c *Controller) openStore(cfg Config) (err error) {
	if c.bolt, err = store.Open(cfg.DataDir); err != nil {
		return err
	}
	switch cfg.Store {
	case "", StoreBolt:
		c.store = c.bolt
		return nil
	case StoreEtcd:
	default:
		return fmt.Errorf("--store %q: want %s or %s", cfg.Store, StoreBolt, StoreEtcd)
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
	return nil
}

// etcdClient connects to etcd with cfg's TLS and credentials.
func etcdClient(cfg EtcdConfig) (*clientv3.Client, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("--store etcd needs --etcd-endpoints")
	}
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
	if (cfg.CertFile == "") != (cfg.KeyFile == "") {
		return nil, errors.New("--etcd-cert-file and --etcd-key-file go together")
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

// openPKI opens the CA and the serving certificate with open. On etcd,
// without an operator's CA, the controllers sharing the prefix share one
// CA kept in etcd: a controller takes the shared one into DATA/tls, or,
// the first time, shares its own (the one pki creates). A data dir whose
// CA differs from the shared one is refused, saying what to do.
func (c *Controller) openPKI(cfg Config, dir string, open func() error) error {
	if c.etcdStore == nil || cfg.TLSCACert != "" {
		return open()
	}
	shared, ok, err := c.etcdStore.SharedCA()
	if err != nil {
		return fmt.Errorf("read the CA the controllers share in etcd: %w", err)
	}
	if ok {
		if err := installCA(dir, shared, false); err != nil {
			return err
		}
		return open()
	}
	_, statErr := os.Stat(filepath.Join(dir, pki.CACertName))
	hadCA := statErr == nil
	if err := open(); err != nil {
		return err
	}
	mine, err := readCAFiles(dir)
	if err != nil {
		return err
	}
	won, err := c.etcdStore.ShareCA(mine)
	if err != nil {
		return fmt.Errorf("share this controller's CA in etcd: %w", err)
	}
	if won {
		c.log.Info("shared this controller's CA with the controllers on etcd", "etcd_prefix", cfg.Etcd.Prefix)
		return nil
	}
	if shared, _, err = c.etcdStore.SharedCA(); err != nil {
		return fmt.Errorf("read the CA the controllers share in etcd: %w", err)
	}
	if bytes.Equal(shared, mine) { // ours, from a try whose answer was lost
		return nil
	}
	if err := installCA(dir, shared, !hadCA); err != nil { // another controller shared first
		return err
	}
	return open()
}

// readCAFiles returns DIR's CA certificate and key, PEM, one after the other.
func readCAFiles(dir string) ([]byte, error) {
	cert, err := os.ReadFile(filepath.Join(dir, pki.CACertName))
	if err != nil {
		return nil, err
	}
	key, err := os.ReadFile(filepath.Join(dir, pki.CAKeyName))
	if err != nil {
		return nil, err
	}
	return append(cert, key...), nil
}

// installCA writes the shared CA into DIR (the key 0600, first), unless
// DIR holds it already. A different CA in DIR is an error, unless replace.
func installCA(dir string, shared []byte, replace bool) error {
	if mine, err := readCAFiles(dir); err == nil && !replace {
		if bytes.Equal(mine, shared) {
			return nil
		}
		return fmt.Errorf("%s holds another CA than the one the controllers on etcd share; move it away to take the shared one (agents enrolled with this data dir's CA must then enroll again), or give the shared CA with --tls-ca-cert/--tls-ca-key: %w",
			dir, errkind.FailedPrecondition)
	}
	var cert, key []byte
	for b, rest := pem.Decode(shared); b != nil; b, rest = pem.Decode(rest) {
		if b.Type == "CERTIFICATE" {
			cert = pem.EncodeToMemory(b)
		} else {
			key = pem.EncodeToMemory(b)
		}
	}
	if cert == nil || key == nil {
		return fmt.Errorf("the CA shared in etcd is not a PEM certificate and key: %w", errkind.DataLoss)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(dir, pki.CAKeyName), key, 0o600); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, pki.CACertName), cert, 0o644)
}
