package etcdstore

import (
	"context"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// keyCA holds the CA that the controllers sharing this prefix all use:
// its certificate and its private key, PEM, one after the other. The key is
// a secret: etcd must be reached over TLS with authentication (README,
// "State in etcd").
const keyCA = "tls/ca"

// SharedCA returns the CA the controllers on this prefix share (PEM
// certificate and key, as ShareCA stored them); ok is false when none
// was shared yet.
func (s *Store) SharedCA() (pem []byte, ok bool, err error) {
	err = s.request(func(ctx context.Context) error {
		resp, err := s.cfg.Client.Get(ctx, s.cfg.Prefix+keyCA)
		if err != nil {
			return err
		}
		if len(resp.Kvs) == 1 {
			pem, ok = resp.Kvs[0].Value, true
		}
		return nil
	})
	return pem, ok, err
}

// ShareCA stores pem as the shared CA unless one is shared already; won
// says whether pem is now the shared one.
func (s *Store) ShareCA(pem []byte) (won bool, err error) {
	key := s.cfg.Prefix + keyCA
	err = s.request(func(ctx context.Context) error {
		resp, err := s.cfg.Client.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(clientv3.OpPut(key, string(pem))).Commit()
		if err != nil {
			return err
		}
		won = resp.Succeeded
		return nil
	})
	return won, err
}
