package store

import (
	"context"
	"fmt"
	"time"
)

// SigningKey is a private key that signs berth's JWTs. It verifies until RetireAt.
type SigningKey struct {
	KID        string
	Algorithm  string
	PrivateKey []byte // PKCS #8 DER
	CreatedAt  time.Time
	RetireAt   time.Time
}

// AddSigningKey stores a new key.
func (s *Store) AddSigningKey(ctx context.Context, k SigningKey) error {
	_, err := s.wdb.ExecContext(ctx, s.q(`INSERT INTO signing_keys (kid, algorithm, private_key, created_at, retire_at) VALUES (?, ?, ?, ?, ?)`),
		k.KID, k.Algorithm, k.PrivateKey, k.CreatedAt.UnixMilli(), k.RetireAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("store: add signing key: %w", err)
	}
	return nil
}

// SigningKeys lists the keys not retired at now, newest first.
func (s *Store) SigningKeys(ctx context.Context, now time.Time) ([]SigningKey, error) {
	return queryAll(ctx, s.r, s.q(`SELECT kid, algorithm, private_key, created_at, retire_at FROM signing_keys WHERE retire_at > ? ORDER BY created_at DESC, kid`),
		[]any{now.UnixMilli()}, func(sc scanner) (SigningKey, error) {
			var k SigningKey
			var created, retire int64
			err := sc.Scan(&k.KID, &k.Algorithm, &k.PrivateKey, &created, &retire)
			k.CreatedAt, k.RetireAt = time.UnixMilli(created), time.UnixMilli(retire)
			return k, err
		})
}

// DeleteRetiredSigningKeys removes keys retired before now.
func (s *Store) DeleteRetiredSigningKeys(ctx context.Context, now time.Time) error {
	if _, err := s.wdb.ExecContext(ctx, s.q(`DELETE FROM signing_keys WHERE retire_at <= ?`), now.UnixMilli()); err != nil {
		return fmt.Errorf("store: delete retired keys: %w", err)
	}
	return nil
}

// ReplaceSigningKey stores key kid's private key as next, if it is still old (another replica
// may have replaced it first).
func (s *Store) ReplaceSigningKey(ctx context.Context, kid string, old, next []byte) error {
	if _, err := s.wdb.ExecContext(ctx, s.q(`UPDATE signing_keys SET private_key = ? WHERE kid = ? AND private_key = ?`), next, kid, old); err != nil {
		return fmt.Errorf("store: replace signing key: %w", err)
	}
	return nil
}
