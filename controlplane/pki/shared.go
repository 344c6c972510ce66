package pki

import (
	"bytes"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cutover-dev/cutover/pkg/atomicfile"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

// Shared is where the controllers that share their records keep one CA
// (controlplane/etcdstore implements it on etcd): its certificate and
// private key, PEM, one after the other.
type Shared interface {
	// SharedCA returns the shared CA; ok is false when none was shared.
	SharedCA() (pem []byte, ok bool, err error)
	// ShareCA stores pem unless a CA is shared already; won says whether
	// pem is now the shared one.
	ShareCA(pem []byte) (won bool, err error)
}

// loadShared is loadCA for a controller with a Shared CA and no CA of
// the operator's: it takes the shared CA into Dir, or, the first time,
// shares its own (the one loadCA finds or creates). A Dir whose CA differs
// from the shared one is refused, saying what to do.
func loadShared(cfg Config) error {
	shared, ok, err := cfg.Shared.SharedCA()
	if err != nil {
		return fmt.Errorf("pki: read the shared CA: %w", err)
	}
	if ok {
		return installCA(cfg.Dir, shared, false)
	}
	_, statErr := os.Stat(filepath.Join(cfg.Dir, CACertName))
	hadCA := statErr == nil
	if _, _, err := loadCA(cfg); err != nil { // creates one if Dir has none
		return err
	}
	mine, err := readCAFiles(cfg.Dir)
	if err != nil {
		return err
	}
	won, err := cfg.Shared.ShareCA(mine)
	if err != nil {
		return fmt.Errorf("pki: share this controller's CA: %w", err)
	}
	if won {
		cfg.Log.Info("shared this controller's CA with the controllers that share its records")
		return nil
	}
	if shared, _, err = cfg.Shared.SharedCA(); err != nil {
		return fmt.Errorf("pki: read the shared CA: %w", err)
	}
	if bytes.Equal(shared, mine) { // ours, from a try whose answer was lost
		return nil
	}
	return installCA(cfg.Dir, shared, !hadCA) // another controller shared first
}

// readCAFiles returns DIR's CA certificate and key, PEM, one after the other.
func readCAFiles(dir string) ([]byte, error) {
	cert, err := os.ReadFile(filepath.Join(dir, CACertName))
	if err != nil {
		return nil, err
	}
	key, err := os.ReadFile(filepath.Join(dir, CAKeyName))
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
		return fmt.Errorf("%s holds another CA than the one the controllers sharing its records share; move it away to take the shared one (agents enrolled with this data dir's CA must then enroll again), or give the shared CA with --tls-ca-cert/--tls-ca-key: %w",
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
	if err := atomicfile.Write(filepath.Join(dir, CAKeyName), key, 0o600); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, CACertName), cert, 0o644)
}
